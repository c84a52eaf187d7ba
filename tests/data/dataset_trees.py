"""Builders of miniature Kinetics, HMDB-51, Something-Something-v2 and ImageNet-style trees in each dataset's
real on-disk format, from real frames (the sample clips) and real photos (scikit-image's bundled images).

The session fixtures in conftest.py call these once per test session."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image
from video_fixtures import write_avi

KINETICS_CLASSES = ["abseiling", "air drumming", "zumba"]  # sorted, as the DataModule orders them
HMDB_CLASSES = ["brush_hair", "cartwheel", "shoot_bow"]
SSV2_TEMPLATES = [
    "Holding something next to something",
    "Pushing something from left to right",
    "Putting something on a surface",
]  # labels.json ids 0, 1, 2
IMAGE_CLASSES = ["cat", "coffee", "person"]


def webm_codec() -> str | None:
    """The WebM encoder this PyAV build has (SSv2 is VP9), or None."""
    for codec in ("libvpx-vp9", "libvpx"):
        if codec in av.codecs_available:
            return codec
    return None


def write_video(path: Path, frames: np.ndarray, codec: str, size: tuple[int, int], rate: int, gop: int) -> None:
    """Encode RGB frames at ``size = (width, height)`` with ``codec`` (container from the file name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "libx264": {"preset": "ultrafast"},
        "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
        "libvpx": {"deadline": "realtime", "cpu-used": "8"},
    }.get(codec, {})
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.gop_size = gop
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=size[0], height=size[1])
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


# --- Kinetics ----------------------------------------------------------------------------------------------


@dataclass
class KineticsTree:
    root: Path
    train: list[tuple[str, int]]  # present training clips: (path relative to root, label)
    val: list[tuple[str, int]]
    missing_train: list[str]  # CSV stems with no file
    missing_val: list[str]


KINETICS_FRAMES = 20


def build_kinetics(root: Path, frames: np.ndarray) -> KineticsTree:
    """Kinetics-400 layout: annotations/{train,val}.csv with is_cc, H.264 MP4 clips (GOP 8) named
    <youtube_id>_<start:06d>_<end:06d>.mp4 in label folders ("air drumming" as listed, once with an
    underscore), one clip directly in train/ (flat mirrors); 3 training and 1 validation rows without a file.
    Also VideoMAE lists annotations/{train,val}_list.txt (relative and absolute paths, one missing file)
    and a class list in a non-sorted order."""
    # (label, youtube id, start, folder under the split dir or "" for flat, present)
    train_rows = [
        ("zumba", "-zU3x_Kq9a0", 12, "zumba", True),
        ("abseiling", "A1b2C3d4E5f", 0, "abseiling", True),
        ("air drumming", "drum_0000aa", 31, "air drumming", True),
        ("abseiling", "gone0000001", 5, "abseiling", False),
        ("air drumming", "drum_1111bb", 7, "air_drumming", True),
        ("zumba", "zumbaFlat01", 100, "", True),
        ("zumba", "gone0000002", 44, "zumba", False),
        ("abseiling", "QwErTy12345", 3, "abseiling", True),
        ("air drumming", "gone0000003", 9, "air drumming", False),
    ]
    val_rows = [
        ("air drumming", "valDrum0001", 1, "air drumming", True),
        ("abseiling", "valAbs00001", 20, "abseiling", True),
        ("zumba", "gone0000004", 2, "zumba", False),
        ("zumba", "valZumba001", 250, "zumba", True),
    ]
    tree = KineticsTree(root, [], [], [], [])
    k = 0
    for split, rows, present, missing in (
        ("train", train_rows, tree.train, tree.missing_train),
        ("val", val_rows, tree.val, tree.missing_val),
    ):
        lines = ["label,youtube_id,time_start,time_end,split,is_cc"]
        for label, yid, start, folder, exists in rows:
            end = start + 10
            # One row writes its times as floats, as some re-exported CSVs do.
            times = f"{start}.0,{end}.0" if yid == "QwErTy12345" else f"{start},{end}"
            quoted = f'"{label}"' if " " in label else label  # the official CSVs quote names with spaces
            lines.append(f"{quoted},{yid},{times},{split},0")
            stem = f"{yid}_{start:06d}_{end:06d}"
            if not exists:
                missing.append(stem)
                continue
            rel = f"{split}/{folder + '/' if folder else ''}{stem}.mp4"
            offset = 5 * k
            k += 1
            write_video(root / rel, frames[offset : offset + KINETICS_FRAMES], "libx264", (128, 96), 25, 8)
            present.append((rel, KINETICS_CLASSES.index(label)))
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"{split}.csv").write_text("\n".join(lines) + "\n")
    # VideoMAE lists: training paths relative (one absolute), plus one missing file; validation absolute.
    train_list = [f"{p} {lab}" for p, lab in tree.train]
    train_list[1] = f"{root / tree.train[1][0]} {tree.train[1][1]}"
    train_list.append(f"train/zumba/{tree.missing_train[1]}.mp4 2")
    (root / "annotations" / "train_list.txt").write_text("\n".join(train_list) + "\n")
    (root / "annotations" / "val_list.txt").write_text("".join(f"{root / p} {lab}\n" for p, lab in tree.val))
    (root / "classes.txt").write_text("zumba\nabseiling\nair drumming\n")
    return tree


# --- HMDB-51 -----------------------------------------------------------------------------------------------


@dataclass
class HmdbTree:
    root: Path
    videos: dict[str, list[str]]  # class → its 3 video file names
    roles: dict[int, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)  # fold → role → items


HMDB_FRAMES = 16


def build_hmdb(root: Path, frames: np.ndarray) -> HmdbTree:
    """HMDB-51 layout: videos/<class>/<video>.avi (MPEG-4 AVI 320×240) and
    testTrainMulti_7030_splits/<class>_test_split{1,2}.txt with lines "<video>.avi <0|1|2> " (the official
    trailing space). Fold 1: video 0 trains, 1 tests, 2 unused; fold 2: 2 trains, 0 tests, 1 unused.
    Fold 3: the split file of shoot_bow is missing."""
    names = {
        "brush_hair": [
            "April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
            "Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi",
            "brush_my_hair_without_a_mirror_brush_hair_u_cm_np2_ri_goo_1.avi",
        ],
        "cartwheel": [
            "#20_Rhythm_cartwheel_f_cm_np1_le_med_0.avi",
            "Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi",
            "Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi",
        ],
        "shoot_bow": [
            "Archery_(Bogenschiessen)_shoot_bow_u_nm_np1_fr_med_0.avi",
            "Bow_and_arrow_shoot_bow_f_cm_np1_ri_med_2.avi",
            "archery_shoot_bow_u_cm_np1_fr_goo_3.avi",
        ],
    }
    tree = HmdbTree(root, names)
    k = 0
    for cls in HMDB_CLASSES:
        for name in names[cls]:
            write_avi(root / "videos" / cls / name, frames[7 * k : 7 * k + HMDB_FRAMES])
            k += 1
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir()
    for fold, ids in ((1, ("1", "2", "0")), (2, ("2", "0", "1")), (3, ("1", "2", "0"))):
        tree.roles[fold] = {"train": [], "test": []}
        for label, cls in enumerate(HMDB_CLASSES):
            if fold == 3 and cls == "shoot_bow":
                continue
            (splits / f"{cls}_test_split{fold}.txt").write_text("".join(f"{n} {i} \n" for n, i in zip(names[cls], ids)))
            for n, i in zip(names[cls], ids):
                if i != "0":
                    tree.roles[fold]["train" if i == "1" else "test"].append((f"videos/{cls}/{n}", label))
    return tree


# --- Something-Something-v2 --------------------------------------------------------------------------------


@dataclass
class Ssv2Tree:
    root: Path
    codec: str
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]


SSV2_FRAMES = 14


def build_ssv2(root: Path, frames: np.ndarray, codec: str) -> Ssv2Tree:
    """SSv2 layout: 20bn-something-something-v2/<id>.webm (VP9 WebM at 12 fps, 160×120), labels/labels.json
    (template → id string, in a non-sorted key order) and labels/{train,validation}.json entries with the
    bracketed templates and placeholders."""
    labels = {SSV2_TEMPLATES[2]: "2", SSV2_TEMPLATES[0]: "0", SSV2_TEMPLATES[1]: "1"}
    entries = {
        "train": [
            ("78687", "Holding [something] next to [something]", ["potato", "vicks vaporub bottle"]),
            ("42326", "Putting [something] on a surface", ["a pen"]),
            ("100904", "Pushing [something] from left to right", ["a box"]),
            ("3694", "Holding [something] next to [something]", ["cup", "spoon"]),
        ],
        "validation": [
            ("74225", "Pushing [something] from left to right", ["a ball"]),
            ("116154", "Putting [something] on a surface", ["keys"]),
        ],
    }
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "labels.json").write_text(json.dumps(labels, indent=1))
    tree = Ssv2Tree(root, codec, [], [])
    k = 0
    for split, rows in entries.items():
        data = []
        for vid, template, placeholders in rows:
            label = template.replace("[", "").replace("]", "")
            for p in placeholders:  # the free-text label fills in the placeholders
                label = label.replace("something", p, 1)
            data.append({"id": vid, "label": label, "template": template, "placeholders": placeholders})
            rel = f"20bn-something-something-v2/{vid}.webm"
            write_video(root / rel, frames[9 * k : 9 * k + SSV2_FRAMES], codec, (160, 120), 12, 6)
            k += 1
            (tree.train if split == "train" else tree.val).append((rel, SSV2_TEMPLATES.index(labels_key(template))))
        (root / "labels" / f"{split}.json").write_text(json.dumps(data))
    return tree


def labels_key(template: str) -> str:
    return template.replace("[", "").replace("]", "")


# --- Image folders -----------------------------------------------------------------------------------------


@dataclass
class ImageTree:
    root: Path
    train: list[tuple[str, int]]  # readable training images
    val: list[tuple[str, int]]
    corrupt_train: list[str]  # relative paths of the unreadable training images
    corrupt_val: str  # in val_bad/


def build_image_folder(root: Path) -> ImageTree:
    """ImageNet layout from scikit-image's bundled photos (no download): train/<class>/ and val/<class>/ with
    JPEGs (.JPEG as ImageNet writes it, and .jpg), a PNG, a grayscale PNG, a non-image file that is ignored,
    and two unreadable training images (a truncated JPEG and a text file named .JPEG). val_bad/ holds a
    readable and a truncated validation image."""
    import skimage.data

    photos = {"cat": skimage.data.chelsea(), "coffee": skimage.data.coffee(), "person": skimage.data.astronaut()}
    tree = ImageTree(root, [], [], [], "")

    def save(rel: str, array: np.ndarray, **kwargs) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / rel, **kwargs)

    for label, cls in enumerate(IMAGE_CLASSES):
        photo = photos[cls]
        save(f"train/{cls}/{cls}_0001.JPEG", photo, format="JPEG", quality=90)
        save(f"train/{cls}/{cls}_0002.png", np.ascontiguousarray(photo[:, ::-1]))
        tree.train += [(f"train/{cls}/{cls}_0001.JPEG", label), (f"train/{cls}/{cls}_0002.png", label)]
        save(f"val/{cls}/{cls}_val.jpg", np.ascontiguousarray(photo[::2, ::2]), format="JPEG")
        tree.val.append((f"val/{cls}/{cls}_val.jpg", label))
    save("train/person/person_0003_gray.png", skimage.data.camera())
    tree.train.append(("train/person/person_0003_gray.png", 2))
    tree.train.sort()
    (root / "train/coffee/README.txt").write_text("not an image, ignored\n")
    jpeg = (root / "train/cat/cat_0001.JPEG").read_bytes()
    (root / "train/cat/cat_0009_truncated.JPEG").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "train/coffee/coffee_0009_text.JPEG").write_text("<html>404 Not Found</html>\n")
    tree.corrupt_train = ["train/cat/cat_0009_truncated.JPEG", "train/coffee/coffee_0009_text.JPEG"]
    save("val_bad/cat/cat_ok.jpg", photos["cat"], format="JPEG")
    (root / "val_bad/coffee").mkdir(parents=True)
    (root / "val_bad/coffee/coffee_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    tree.corrupt_val = "val_bad/coffee/coffee_truncated.jpg"
    return tree


def build_mini_ucf101(root: Path, frames: np.ndarray) -> Path:
    """The smallest official UCF-101 layout: classes Biking and JumpRope, two 24-frame XviD AVIs each (group 1 for
    training, group 2 for testing) cut from ``frames`` (at least 48), classInd.txt and the split lists of all three
    folds. Returns ``root``."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 Biking\n2 JumpRope\n")
    train, test = [], []
    for label, cls in enumerate(["Biking", "JumpRope"], start=1):
        for g in (1, 2):
            rel = f"{cls}/v_{cls}_g{g:02d}_c01.avi"
            write_avi(root / "UCF-101" / rel, frames[12 * g : 12 * g + 24])
            (train if g == 1 else test).append((rel, label))
    for fold in (1, 2, 3):
        (lists / f"trainlist0{fold}.txt").write_text("".join(f"{p} {label}\n" for p, label in train))
        (lists / f"testlist0{fold}.txt").write_text("".join(f"{p}\n" for p, _ in test))
    return root
