"""Writing results: atomic files, the resolved config, and a manifest for reproducibility."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .errors import UserError
from .profile import file_sha256
from .version import VERSION

PACKAGES = ("simpy", "numpy", "pandas", "pyarrow", "scipy", "matplotlib", "pyyaml", "dask")


def current_umask() -> int:
    """The process's file-creation mask (read without changing it where the OS reports it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write(path: Path, writer: Callable[[Path], Any]) -> Path:
    """Write via a temporary file in the same folder and rename it into place.

    The file gets the permissions a plain ``open(path, "w")`` would (0666 less the user's umask), not the
    0600 of a temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def write_parquet(path: Path, df: pd.DataFrame) -> Path:
    return atomic_write(path, lambda p: df.to_parquet(p, index=False))


def git_revision() -> str | None:
    """The repository's commit (with '+dirty' when modified), when run from a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "eesim": VERSION}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def manifest(seed: int, profile_path: str | None, wall_s: float, **extra: Any) -> dict[str, Any]:
    """Provenance of a set of results."""
    m: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        "versions": versions(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "wall_time_s": round(wall_s, 3),
    }
    if profile_path:
        m["profile"] = {"path": str(profile_path), "sha256": file_sha256(profile_path)}
    m.update(extra)
    return m


def write_manifest(path: Path, data: dict[str, Any]) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    return write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


# -- a run's results folder, written whole ----------------------------------------------------------
RUN_FILES = ("summary.csv", "per_replication.csv", "requests.parquet", "devices.csv", "timeline.parquet",
             "config.yaml", "policies.yaml", "manifest.json", "report")  # report: drawn from the run


def check_run_out(out: Path) -> None:
    """Refuse an ``--out`` that a run may not replace: a file, or a folder holding anything but an
    earlier run's outputs (a sweep folder, someone's files)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if not out.is_dir():
        return
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as e:
        raise UserError(f"cannot read --out {out}: {e.strerror or e}") from None
    other = [n for n in entries if n not in RUN_FILES]
    kind = None
    if "manifest.json" in entries:
        try:
            kind = json.loads((out / "manifest.json").read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = "unreadable"
    if other or kind not in (None, "run"):
        shown = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "") if other else f"a {kind} manifest"
        raise UserError(f"--out {out} is not empty and is not an earlier run's folder (it holds {shown}); "
                        "choose another --out or empty it")


def staging_folder(out: Path) -> Path:
    """A new hidden folder beside ``out`` to write a run into (checks that ``out``'s parent is writable)."""
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~current_umask())  # as a plain mkdir would make it, not mkdtemp's 0700
    except OSError as e:
        raise UserError(f"cannot write results to {out}: {e.strerror or e} ({parent})") from None
    return tmp


def publish_folder(tmp: Path, out: Path) -> bool:
    """Move the finished folder ``tmp`` to ``out``, replacing an earlier run there whole (no file of it
    survives beside the new ones); True when one was replaced."""
    check_run_out(out)  # again: the run took a while
    if not out.exists():
        os.rename(tmp, out)
        return False
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)  # put the earlier run back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return True
