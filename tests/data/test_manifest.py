"""Manifest: bad files known before training, cache reuse, invalidation by size/mtime, cache location."""

import json
import os
import shutil

import pytest
from video_fixtures import FRAMES, remux_to_ts, sample_clip

from lfq_kit.data import VideoItem, build_manifest, manifest_path
from lfq_kit.data import manifest as manifest_module


def items_of(tree):
    return [VideoItem(f"UCF-101/{p}", label) for p, label in tree.train1 + tree.test1]


@pytest.fixture
def probe_calls(monkeypatch):
    calls = []
    real = manifest_module.probe_video

    def spy(path, verify_end=True):
        calls.append(os.path.basename(path))
        return real(path, verify_end=verify_end)

    monkeypatch.setattr(manifest_module, "probe_video", spy)
    return calls


def test_bad_files_are_known_before_training(ucf_tree, tmp_path):
    items = items_of(ucf_tree) + [VideoItem("UCF-101/Biking/v_Biking_g99_c01.avi", 1)]
    entries = build_manifest(ucf_tree.root, items, "ucf101", manifest_dir=tmp_path)
    assert [(e.video_id, e.label) for e in entries] == [(i.path, i.label) for i in items]  # order kept
    reasons = {e.video_id.split("/", 1)[1]: e.reason for e in entries if not e.ok}
    expected = {p: kind for p, kind in ucf_tree.bad.items() if kind != "corrupt frames"}
    expected["Biking/v_Biking_g99_c01.avi"] = "missing"
    assert set(reasons) == set(expected)
    for path, kind in expected.items():
        needle = {"empty": "empty file", "truncated": "truncated", "text": "Invalid data", "missing": "not found"}[kind]
        assert needle in reasons[path]
    good = [e for e in entries if e.ok]
    assert all(e.info.num_frames in (FRAMES, 12) and e.info.fps == 25.0 for e in good)
    assert all(os.path.isabs(e.path) and e.path.endswith(e.video_id) for e in entries)


def test_cache_is_reused_and_invalidated_by_changes(ucf_tree, tmp_path, probe_calls):
    root = tmp_path / "data"
    root.mkdir()
    for name in ("a.avi", "b.avi"):
        shutil.copy(ucf_tree.root / "UCF-101/JumpRope/v_JumpRope_g01_c01.avi", root / name)
    items = [VideoItem("a.avi", 0), VideoItem("b.avi", 1)]
    first = build_manifest(root, items, "mini")
    assert sorted(probe_calls) == ["a.avi", "b.avi"]
    cache = manifest_path(root, "mini")
    assert cache.parent == root.resolve() and cache.name.startswith(".lfq_kit_manifest-mini-")
    assert json.loads(cache.read_text())["files"]["a.avi"]["info"]["num_frames"] == FRAMES

    probe_calls.clear()
    assert build_manifest(root, items, "mini") == first and probe_calls == []  # reused: only stat

    shutil.copy(ucf_tree.root / "UCF-101" / ucf_tree.short, root / "b.avi")  # new size and mtime
    changed = build_manifest(root, items, "mini")
    assert probe_calls == ["b.avi"] and changed[1].info.num_frames == 12 and changed[0] == first[0]

    probe_calls.clear()
    st = os.stat(root / "a.avi")
    os.utime(root / "a.avi", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same size
    build_manifest(root, items, "mini")
    assert probe_calls == ["a.avi"]

    probe_calls.clear()
    build_manifest(root, items, "mini", verify_end=False)  # a different probe depth re-probes
    assert sorted(probe_calls) == ["a.avi", "b.avi"]


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("LFQ_KIT_CACHE", str(tmp_path / "user-cache"))
    root = tmp_path / "root"
    root.mkdir()
    assert manifest_path(root, "x").parent == root.resolve()
    assert manifest_path(root, "x", prefer_root=False).parent == tmp_path / "user-cache"
    assert manifest_path(root, "x", manifest_dir=tmp_path / "m").parent == tmp_path / "m"
    assert manifest_path(root, "x") != manifest_path(tmp_path, "x") != manifest_path(root, "y")


def test_unreadable_cache_is_rebuilt(ucf_tree, tmp_path, probe_calls):
    items = [VideoItem(f"UCF-101/{ucf_tree.short}", 3)]
    manifest_path(ucf_tree.root, "broken", tmp_path).write_text("{not json")
    entries = build_manifest(ucf_tree.root, items, "broken", manifest_dir=tmp_path)
    assert entries[0].ok and len(probe_calls) == 1


def test_caches_of_the_earlier_probe_version_are_probed_again(tmp_path, probe_calls):
    # Version 1 probed an MPEG-TS file with one keyframe as 1 frame; such a cached count must not survive.
    root = tmp_path / "data"
    root.mkdir()
    remux_to_ts(sample_clip("carphone_pristine.mp4"), root / "clip.ts")
    items = [VideoItem("clip.ts", 0)]
    assert build_manifest(root, items, "ts")[0].info.num_frames == 120
    cache = manifest_path(root, "ts")
    stale = json.loads(cache.read_text())
    assert stale["version"] == manifest_module._VERSION > 1
    stale["version"] = 1
    stale["files"]["clip.ts"]["info"]["num_frames"] = 1  # what version 1 wrote
    cache.write_text(json.dumps(stale))
    probe_calls.clear()
    entries = build_manifest(root, items, "ts")
    assert probe_calls == ["clip.ts"] and entries[0].info.num_frames == 120
