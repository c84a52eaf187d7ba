"""lfq_kit.io: the one atomic writer (partial name, rename, cleanup) that every file lfq-kit writes goes through."""

import pytest

from lfq_kit.io import PartialFile, partial_path, remove_partial_files, write_atomic, write_file_atomic


def test_the_partial_file_is_hidden_beside_the_target_and_shared_writers_get_their_own(tmp_path):
    assert partial_path(tmp_path / "last.ckpt") == tmp_path / ".last.ckpt.partial"
    a, b = partial_path(tmp_path / "m.json", shared=True), partial_path(tmp_path / "m.json", shared=True)
    assert a != b and a.parent == tmp_path and a.name.startswith(".m.json.") and a.name.endswith(".partial")


def test_a_write_lands_whole_and_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    assert write_file_atomic(path, lambda f: f.write(b"one")) == path

    def half_then_fail(tmp):
        tmp.write_bytes(b"tw")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"one"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]
    assert write_atomic(path, lambda tmp: tmp.write_bytes(b"two"), shared=True).read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_partial_file_commits_on_success_and_leftovers_are_removed(tmp_path):
    with PartialFile(tmp_path / "v.mp4") as file:
        file.partial.write_bytes(b"x")
        assert not file.path.exists()
    assert file.path.read_bytes() == b"x"
    with pytest.raises(FileNotFoundError):
        PartialFile(tmp_path / "never.bin").commit()
    stale = partial_path(tmp_path / "killed.ckpt")
    stale.write_bytes(b"half")
    assert remove_partial_files(tmp_path) == [stale] and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
