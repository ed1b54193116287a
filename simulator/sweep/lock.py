"""An exclusive lock on a sweep's output folder: ``OUT/.lock`` names its owner (pid, host, start time).

The owner holds an ``flock`` on the file for as long as it runs and removes the file when it is done.
Another sweep on the same folder is refused while the lock is held. A lock left by a process that died
(SIGKILL, power loss) is taken over when it names a pid that no longer exists on this host; one left by
another host is refused with the path to remove once that host's sweep is known to be gone.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

LOCK = ".lock"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_owner(path: Path) -> dict[str, Any]:
    """The owner recorded in a lock file ({} when absent or unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "another process"
    return (f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
            + (f", since {owner['started']}" if owner.get("started") else ""))


def holder(folder: Path) -> tuple[dict[str, Any], bool] | None:
    """``(owner, certain)`` when a live sweep holds ``folder``'s lock as far as this host can tell
    (``certain``: it holds the flock), else None."""
    path = Path(folder) / LOCK
    if not path.exists():
        return None
    owner = read_owner(path)
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return (owner, False) if owner else None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return owner, True
    finally:
        os.close(fd)
    return (owner, False) if _alive(owner) else None


def is_held(folder: Path) -> bool:
    """Whether a live sweep holds ``folder``'s lock (as far as this host can tell)."""
    return holder(folder) is not None


def _alive(owner: dict[str, Any]) -> bool:
    """A recorded owner that may still be running: another host, or a live pid on this one."""
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        return pid_alive(int(owner.get("pid", -1)))
    except (TypeError, ValueError):
        return False


class FolderLock:
    """``with FolderLock(out): ...`` -- or ``acquire()`` / ``release()``."""

    def __init__(self, folder: Path, what: str = "sweep"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        for _ in range(50):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise UserError(f"cannot create the lock file {self.path}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise UserError(f"cannot lock {self.path}: {e.strerror or e}") from None
                raise self._held(read_owner(self.path), certain=True) from None
            try:  # the file may have been removed (released) between open and flock: start over
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            owner = read_owner(self.path)
            if owner and owner.get("pid") != os.getpid() and _alive(owner):
                os.close(fd)  # e.g. a file system without flock, or another host's sweep
                raise self._held(owner, certain=False)
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "kind": self.what}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            os.fsync(fd)
            self.fd = fd
            return self
        raise UserError(f"cannot lock {self.path}: it keeps being replaced")  # pragma: no cover

    def check(self) -> None:
        """Refuse now, without taking the lock, when another sweep holds it (to fail before the slow
        part of starting; :meth:`acquire` decides)."""
        held = holder(self.folder)
        if held is not None and held[0].get("pid") != os.getpid():
            raise self._held(*held)

    def _held(self, owner: dict[str, Any], certain: bool) -> UserError:
        hint = ("; wait for it to finish or choose another --out" if certain
                else f"; if that {self.what} is no longer running, remove {self.path}")
        return UserError(f"{self.folder} is in use by another {self.what} ({_describe(owner)}){hint}")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
