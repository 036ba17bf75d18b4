"""Atomic file writes: the destination holds the old content or the new, and no temporary file stays."""

from __future__ import annotations

import json
import os
import sys

import pytest

from common.files import atomic_write_bytes, atomic_write_json, atomic_write_text


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_write_replaces_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_bytes(target, b"{}")
    atomic_write_bytes(target, b'{"x": 1}')
    assert _names(tmp_path) == ["a.json"]
    assert target.read_bytes() == b'{"x": 1}'


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_files_are_private_unless_told_otherwise(tmp_path):
    atomic_write_bytes(tmp_path / "secret", b"token")
    atomic_write_bytes(tmp_path / "public", b"figures", mode=0o644)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "public").stat().st_mode & 0o777 == 0o644


def test_parent_directories_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    atomic_write_text(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"


def test_json_is_utf8_and_round_trips(tmp_path):
    target = tmp_path / "article.json"
    data = {"title": "Zürich", "n": [1, 2.5, None]}
    atomic_write_json(target, data)
    assert json.loads(target.read_bytes()) == data
    assert "Zürich".encode() in target.read_bytes()
    atomic_write_json(target, data, indent=1)
    assert target.read_text(encoding="utf-8").startswith('{\n "title"')


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failure_keeps_old_content_and_removes_temp(tmp_path, monkeypatch, failing):
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"old")

    def boom(*args, **kwargs):
        raise OSError(f"{failing} failed")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match=f"{failing} failed"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["state.json"]


def test_unencodable_json_leaves_destination_untouched(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_bytes()) == {"ok": True}
    assert _names(tmp_path) == ["state.json"]
