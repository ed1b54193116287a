"""Writing results: atomic files, the resolved config, and a manifest for reproducibility."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

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
