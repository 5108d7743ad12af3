"""Private database servers for integration tests, started from the Debian packages.

Each server gets a temp data dir, a free loopback port and trust auth; it is stopped and
removed at the end. Servers refuse to run as root, so they run as their package's user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(user: str, argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *argv]
    return argv


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"database server exited:\n{log.read_text(errors='replace')}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"database server did not listen:\n{log.read_text(errors='replace')}")


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an asyncpg SQLAlchemy URL of a fresh PostgreSQL database."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="stackling-pg-"))
    shutil.chown(tmp, "postgres") if os.geteuid() == 0 else None
    data, log, port = tmp / "data", tmp / "pg.log", free_port()
    subprocess.run(_as_user("postgres", [str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                                         "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True)
    proc = subprocess.Popen(
        _as_user("postgres", [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                              "-h", "127.0.0.1", "-k", str(tmp), "-c", "fsync=off"]),
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, log)
        for _ in range(50):
            done = subprocess.run(_as_user("postgres", [
                str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                "stackling"]), capture_output=True)
            if done.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"createdb failed: {done.stderr.decode(errors='replace')}")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/stackling"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def mariadb_bin() -> Path | None:
    for name in ("mariadbd", "mysqld"):
        for base in ("/usr/sbin", "/usr/bin"):
            if Path(base, name).exists():
                return Path(base, name)
    return None


@contextmanager
def mariadb_server() -> Iterator[str]:
    """Yield an aiomysql SQLAlchemy URL of a fresh MariaDB database."""
    server = mariadb_bin()
    installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if server is None or installer is None:
        raise RuntimeError("MariaDB is not installed (apt-get install mariadb-server)")
    tmp = Path(tempfile.mkdtemp(prefix="stackling-maria-"))
    data, log, port, sock = tmp / "data", tmp / "maria.log", free_port(), tmp / "mysqld.sock"
    user = "mysql" if os.geteuid() == 0 else os.environ.get("USER", "")
    if os.geteuid() == 0:
        shutil.chown(tmp, "mysql")
    subprocess.run([installer, f"--datadir={data}", f"--user={user}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True)
    proc = subprocess.Popen(
        [str(server), "--no-defaults", f"--datadir={data}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={sock}", f"--user={user}",
         "--skip-grant-tables=0", "--innodb-flush-log-at-trx-commit=0",
         f"--pid-file={tmp / 'mysqld.pid'}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, log)
        client = shutil.which("mariadb") or shutil.which("mysql") or "mysql"
        subprocess.run([client, f"--socket={sock}", "-uroot", "-e",
                        "CREATE DATABASE stackling CHARACTER SET utf8mb4; "
                        "CREATE USER 'stackling'@'127.0.0.1' IDENTIFIED BY 'stackling'; "
                        "GRANT ALL ON stackling.* TO 'stackling'@'127.0.0.1';"],
                       check=True, capture_output=True)
        yield f"mysql+aiomysql://stackling:stackling@127.0.0.1:{port}/stackling?charset=utf8mb4"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
