"""Durable replacement: readers see the old file or the new one, never a part, never a temp."""

import pytest

from telemetry_core.durable import replacing, write_bytes


def test_write_creates_folders_and_replaces_whole_files(tmp_path):
    target = tmp_path / "a" / "b" / "data.bin"
    write_bytes(target, b"first")
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [path.name for path in target.parent.iterdir()] == ["data.bin"]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "data.bin"
    write_bytes(target, b"kept")
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_bytes(b"half")
        # The temporary is hidden: landing-file and lake globs never list it.
        assert temporary.name.startswith(".") and temporary.parent == tmp_path
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"kept"
    assert [path.name for path in tmp_path.iterdir()] == ["data.bin"]
