"""Fernet key repository: staged (``0``), primary (highest number) and secondary keys.

Layout and rotation follow Keystone's ``keystone-manage fernet_rotate``: the staged key
becomes the new primary, a new staged key is written, and the oldest secondaries beyond
``max_active_keys`` are removed. Tokens are encrypted with the primary and accepted if
any active key decrypts them. The directory is re-read when it changes, so a rotation done
by another process (``stackling identity rotate-keys``) takes effect without a restart.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3) -> None:
        self.path = path
        self.max_active_keys = max_active_keys
        self._stamp: tuple[float, tuple[str, ...]] | None = None
        self._fernet: MultiFernet | None = None
        self._checked = 0.0

    def _key_numbers(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write_key(self, number: int) -> None:
        target = self.path / str(number)
        tmp = self.path / f".{number}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
        os.replace(tmp, target)

    def setup(self) -> bool:
        """Create the repository with a staged and a primary key if it has none.
        Returns True when keys were created."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        if self._key_numbers():
            return False
        self._write_key(0)
        self._write_key(1)
        return True

    def rotate(self) -> int:
        """Promote the staged key, stage a new one, purge old secondaries.
        Returns the number of the new primary key."""
        numbers = self._key_numbers()
        if not numbers:
            self.setup()
            numbers = self._key_numbers()
        new_primary = max(numbers) + 1
        os.replace(self.path / "0", self.path / str(new_primary))
        self._write_key(0)
        active = sorted(n for n in self._key_numbers() if n != 0)
        # Keep staged + primary + (max_active_keys - 2) secondaries.
        excess = len(active) + 1 - self.max_active_keys
        for number in active[: max(excess, 0)]:
            (self.path / str(number)).unlink()
        self._fernet = None
        return new_primary

    def fernet(self) -> MultiFernet:
        """The current key set, primary first. The directory is looked at no more than
        once a second; a rotation in this process takes effect at once."""
        now = time.monotonic()
        if self._fernet is not None and now - self._checked < 1.0:
            return self._fernet
        self._checked = now
        try:
            stamp = (self.path.stat().st_mtime, tuple(sorted(os.listdir(self.path))))
        except FileNotFoundError as exc:
            raise RuntimeError(f"fernet key repository {self.path} does not exist") from exc
        if self._fernet is None or stamp != self._stamp:
            numbers = self._key_numbers()
            if len(numbers) < 2:
                raise RuntimeError(f"fernet key repository {self.path} has no primary key")
            ordered = [numbers[-1], *reversed(numbers[:-1])]  # primary, secondaries.., staged
            keys = [Fernet((self.path / str(n)).read_bytes().strip()) for n in ordered]
            self._fernet = MultiFernet(keys)
            self._stamp = stamp
        return self._fernet
