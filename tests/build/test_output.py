"""Atomic writes: a crash mid-write leaves the old file whole and no debris."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsletter.build.output import atomic_write, write_if_changed


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "free.html"
    target.write_bytes(b"old")

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["free.html"]


def test_write_if_changed_leaves_identical_files_alone(tmp_path: Path) -> None:
    target = tmp_path / "a" / "index.html"
    assert write_if_changed(target, b"x") is True
    before = target.stat().st_mtime_ns
    assert write_if_changed(target, b"x") is False
    assert target.stat().st_mtime_ns == before
    assert write_if_changed(target, b"y") is True
    assert target.read_bytes() == b"y"
