#!/usr/bin/env python3
"""Real Keystone from PyPI, as the anchor of the identity benchmark (and of Tempest baselines).

Installs ``keystone`` + ``gunicorn`` into ``bench/.work/keystone-venv`` (once; pinned by
``bench/keystone-constraints.txt``), then for each run makes a fresh data dir with SQLite, Fernet
tokens, bcrypt at the same cost as stackling (12 rounds, Keystone's default, set explicitly),
runs ``keystone-manage db_sync / fernet_setup / credential_setup / bootstrap``, and serves the
public WSGI app under gunicorn (2 sync workers) on 127.0.0.1. The bootstrap mirrors stackling's:
RegionOne, domain Default, project admin + user admin (admin), project demo + user demo (member).

Run on its own (foreground; Ctrl-C / SIGTERM stops it)::

    python bench/keystone_anchor.py --port 5000
    # -> prints the path of a clouds.yaml with clouds "keystone" and "keystone-demo"
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import BENCH_DIR, ProcTree, free_port, http, wait_http

KEYSTONE_VERSION = "30.0.0"
GUNICORN_VERSION = "27.0.1"
WORK = BENCH_DIR / ".work"
VENV = WORK / "keystone-venv"
CONSTRAINTS = BENCH_DIR / "keystone-constraints.txt"
ADMIN_PASSWORD = "anchor-admin-pw"
DEMO_PASSWORD = "anchor-demo-pw"

# gunicorn's argv would reach oslo.config (Keystone parses sys.argv): hide it.
WSGI_SHIM = """\
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
"""


def _venv_stamp() -> str:
    h = hashlib.sha256(CONSTRAINTS.read_bytes())
    h.update(f"{KEYSTONE_VERSION} {GUNICORN_VERSION} {sys.version_info[:2]}".encode())
    return h.hexdigest()[:16]


def ensure_venv(python: str = sys.executable) -> Path:
    """Create the venv once; a file lock keeps two concurrent runs from clobbering it."""
    import fcntl

    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / (VENV.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_venv_unlocked(python)


def _ensure_venv_unlocked(python: str = sys.executable) -> Path:
    """Create (once) the Keystone virtualenv; return its bin dir."""
    stamp = VENV / ".stackling-stamp"
    if stamp.exists() and stamp.read_text() == _venv_stamp():
        return VENV / "bin"
    print(f"installing keystone=={KEYSTONE_VERSION} into {VENV} (one time) ...", flush=True)
    subprocess.run([python, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "-U", "pip"], check=True)
    subprocess.run([*pip, "-c", str(CONSTRAINTS), f"keystone=={KEYSTONE_VERSION}",
                    f"gunicorn=={GUNICORN_VERSION}"], check=True)
    stamp.write_text(_venv_stamp())
    return VENV / "bin"


class KeystoneAnchor:
    """One real Keystone: configure, bootstrap, serve, stop."""

    def __init__(self, port: int | None = None, workers: int = 2, cache: str = "memory",
                 hash_rounds: int = 12, data_dir: Path | None = None,
                 security_compliance: bool = False) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.cache = cache
        self.hash_rounds = hash_rounds
        self.security_compliance = security_compliance
        WORK.mkdir(parents=True, exist_ok=True)
        self._own_dir = data_dir is None
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix="keystone-", dir=WORK))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keystone.conf"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.auth_url = f"{self.base_url}/v3"
        self.proc: subprocess.Popen[bytes] | None = None
        self.bin: Path | None = None

    # -- set-up ---------------------------------------------------------------------
    def _write_conf(self) -> None:
        d = self.dir
        # devstack's PCI-DSS settings, the ones tools/tempest.d/stackling.ini declares
        compliance = ("[security_compliance]\nlockout_failure_attempts = 2\n"
                      "lockout_duration = 5\nunique_last_password_count = 2\n"
                      "minimum_password_age = 0\n" if self.security_compliance else "")
        cache = ("[cache]\nenabled = true\nbackend = dogpile.cache.memory\n"
                 if self.cache == "memory" else "[cache]\nenabled = false\n")
        self.conf.write_text(f"""\
[DEFAULT]
log_file = {d}/keystone.log
debug = false
[database]
connection = sqlite:///{d}/keystone.db?timeout=30
[token]
provider = fernet
[fernet_tokens]
key_repository = {d}/fernet-keys
[credential]
key_repository = {d}/credential-keys
[identity]
password_hash_algorithm = bcrypt
password_hash_rounds = {self.hash_rounds}
{cache}{compliance}""")
        (d / "wsgi").mkdir(exist_ok=True)
        (d / "wsgi" / "keystone_anchor_wsgi.py").write_text(WSGI_SHIM)

    def _manage(self, *args: str) -> None:
        assert self.bin is not None
        cmd = [str(self.bin / "keystone-manage"), "--config-file", str(self.conf), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"keystone-manage {args[0]} failed:\n{r.stdout}\n{r.stderr}")

    def setup(self) -> None:
        self.bin = ensure_venv()
        self._write_conf()
        self._manage("db_sync")
        # Two gunicorn workers write to one SQLite file: WAL (persistent in the file) lets
        # readers run beside a writer; without it Tempest sees "database is locked" 500s.
        with contextlib.closing(sqlite3.connect(self.dir / "keystone.db")) as db:
            db.execute("PRAGMA journal_mode=WAL")
        user = ["--keystone-user", "root", "--keystone-group", "root"]
        self._manage("fernet_setup", *user)
        self._manage("credential_setup", *user)
        self._manage("bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
                     "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
                     "--bootstrap-role-name", "admin", "--bootstrap-region-id", "RegionOne",
                     "--bootstrap-admin-url", self.auth_url,
                     "--bootstrap-public-url", self.auth_url,
                     "--bootstrap-internal-url", self.auth_url)

    # -- serve --------------------------------------------------------------------------
    def start(self, timeout: float = 90) -> None:
        assert self.bin is not None, "call setup() first"
        env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(self.conf)}
        log = open(self.dir / "gunicorn.log", "ab")  # stays open for the server
        self.proc = subprocess.Popen(
            [str(self.bin / "gunicorn"), "--chdir", str(self.dir / "wsgi"),
             "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}", "--timeout", "120",
             "keystone_anchor_wsgi:application"],
            env=env, stdout=log, stderr=log, start_new_session=True)
        wait_http(f"{self.auth_url}/", timeout, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        if self._own_dir:
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    @property
    def tree(self) -> ProcTree:
        assert self.proc is not None
        return ProcTree(self.proc.pid)

    # -- identity objects ----------------------------------------------------------------
    def token(self, user: str, password: str, project: str | None) -> tuple[str, Any]:
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}}
        if project:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        r = http("POST", f"{self.auth_url}/auth/tokens", {"auth": auth})
        if r.status != 201:
            raise RuntimeError(f"token for {user}: {r.status} {r.body[:300]!r}")
        return r.header("X-Subject-Token") or "", r.json()

    def create_demo(self) -> None:
        """project demo + user demo with role member, like stackling's bootstrap."""
        tok, _ = self.token("admin", ADMIN_PASSWORD, "admin")
        h = {"X-Auth-Token": tok}
        p = http("POST", f"{self.auth_url}/projects",
                 {"project": {"name": "demo", "domain_id": "default"}}, h)
        u = http("POST", f"{self.auth_url}/users", {"user": {
            "name": "demo", "domain_id": "default", "password": DEMO_PASSWORD}}, h)
        roles = http("GET", f"{self.auth_url}/roles?name=member", headers=h).json()["roles"]
        if p.status != 201 or u.status != 201 or not roles:
            raise RuntimeError(f"demo set-up failed: project {p.status}, user {u.status}")
        pid, uid = p.json()["project"]["id"], u.json()["user"]["id"]
        r = http("PUT", f"{self.auth_url}/projects/{pid}/users/{uid}/roles/{roles[0]['id']}",
                 headers=h)
        if r.status not in (200, 204):
            raise RuntimeError(f"demo role grant failed: {r.status}")

    def write_clouds_yaml(self, path: Path | None = None) -> Path:
        path = path or self.dir / "clouds.yaml"

        def cloud(user: str, pw: str, project: str) -> str:
            return (f"  {'keystone' if user == 'admin' else 'keystone-' + user}:\n"
                    f"    auth:\n      auth_url: {self.auth_url}\n      username: {user}\n"
                    f"      password: {pw}\n      project_name: {project}\n"
                    f"      user_domain_name: Default\n      project_domain_name: Default\n"
                    f"    region_name: RegionOne\n    interface: public\n"
                    f"    identity_api_version: 3\n")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("clouds:\n" + cloud("admin", ADMIN_PASSWORD, "admin")
                     + cloud("demo", DEMO_PASSWORD, "demo"))
        return path

    def version(self) -> str:
        assert self.bin is not None
        r = subprocess.run([str(self.bin / "python"), "-c",
                            "import importlib.metadata as m; print(m.version('keystone'))"],
                           capture_output=True, text=True, check=False)
        return r.stdout.strip() or KEYSTONE_VERSION

    def __enter__(self) -> KeystoneAnchor:
        self.setup()
        self.start()
        self.create_demo()
        self.write_clouds_yaml()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=None, help="listen port (default: a free one)")
    ap.add_argument("--workers", type=int, default=2,
                    help="gunicorn sync workers (default 2; use 1 under Tempest: two workers "
                         "writing one SQLite file give \"database is locked\" 500s)")
    ap.add_argument("--cache", choices=["memory", "none"], default="memory",
                    help="Keystone [cache]: in-process dogpile memory cache or off")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="keep state here (default: a temp dir under bench/.work, removed)")
    ap.add_argument("--security-compliance", action="store_true",
                    help="lockout after 2 failures for 5 s, last 2 passwords unique "
                         "(what tools/tempest.d/stackling.ini declares)")
    ap.add_argument("--install-only", action="store_true", help="just build the venv")
    args = ap.parse_args()
    if args.install_only:
        print(ensure_venv())
        return 0
    ks = KeystoneAnchor(args.port, args.workers, args.cache, data_dir=args.data_dir,
                        security_compliance=args.security_compliance)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ks:
        print(f"keystone {ks.version()} at {ks.auth_url} (pid {ks.proc.pid if ks.proc else '?'})")
        print(f"clouds.yaml: {ks.dir / 'clouds.yaml'}  (clouds: keystone, keystone-demo)",
              flush=True)
        while not stop and ks.proc and ks.proc.poll() is None:
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
