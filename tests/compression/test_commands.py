"""The commands (`lfq-kit compress`, `decompress`, `fit-prior`, `rd`) called as the CLI calls them, and every command
line of docs/compression.md run in order, with the quickstart checkpoints replaced by the tiny test models and the
sample clips by a 20-frame clip of the held-out video."""

import re
import shlex
import shutil
from pathlib import Path

import av
import pytest

from lfq_kit.commands.compress import compress_command, decompress_command, fit_prior_command
from lfq_kit.commands.rd import rd_command
from lfq_kit.compression import read_file_header
from lfq_kit.data.video_writer import write_video

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "compress": compress_command,
    "decompress": decompress_command,
    "fit-prior": fit_prior_command,
    "rd": rd_command,
}


def _frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)), stream.width, stream.height


@pytest.fixture(scope="module")
def short_clip(carphone16, tmp_path_factory) -> Path:
    """20 frames of carphone at 48 × 40, as an H.264 MP4 (what users pass)."""
    frames, fps = carphone16
    video = frames[:20].permute(3, 0, 1, 2).float().div(127.5).sub(1)
    video = video.repeat_interleave(3, 3).repeat_interleave(3, 2)[:, :, :40, :48]  # (3, 20, 40, 48)
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", video, fps=fps, crf=10)


def test_compress_decompress_round_trip_through_the_commands(tokenizer_ckpt, short_clip, tmp_path, capsys):
    out = tmp_path / "c.lfq"
    assert compress_command([str(short_clip), str(out), "--tokenizer", str(tokenizer_ckpt), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: 20 frames of 48 × 40, 2 chunks" in text and "packed prior, 18.00 bits/token" in text
    header = read_file_header(out)
    assert header.hints["tokenizer"] == str(Path(tokenizer_ckpt).resolve()) and header.num_frames == 20
    assert decompress_command([str(out), str(tmp_path / "c.mp4")]) == 0  # the tokenizer found from the hint
    assert _frames(tmp_path / "c.mp4") == (20, 48, 40)
    assert "20 frames of 48 × 40 at 30000/1001 fps" in capsys.readouterr().out


def test_fit_prior_writes_the_sidecar_and_compress_finds_it(tokenizer_ckpt, short_clip, tmp_path, capsys):
    tokenizer = tmp_path / "last.ckpt"
    shutil.copy(tokenizer_ckpt, tokenizer)
    assert fit_prior_command(["--tokenizer", str(tokenizer), str(short_clip), "--stride", "2"]) == 0
    assert (tmp_path / "last.prior.safetensors").is_file()
    assert "fitted on 8640 tokens" in capsys.readouterr().out  # chunks at frames 0 and 2: 2 × 9 × 20 × 24 tokens
    assert (
        compress_command(
            [
                str(short_clip),
                str(tmp_path / "f.lfq"),
                "--tokenizer",
                str(tokenizer),
                "--prior",
                "factorized",
                "--no-progress",
            ]
        )
        == 0
    )
    assert read_file_header(tmp_path / "f.lfq").hints["prior"] == str(tmp_path / "last.prior.safetensors")
    assert decompress_command([str(tmp_path / "f.lfq"), str(tmp_path / "f.mp4"), "--no-progress"]) == 0


def test_command_errors_are_one_line_and_name_what_is_wrong(tokenizer_ckpt, short_clip, tmp_path):
    with pytest.raises(
        SystemExit, match="factorized prior .*last.prior.safetensors' not found; fit one with `lfq-kit fit-prior"
    ):
        tokenizer = tmp_path / "last.ckpt"
        shutil.copy(tokenizer_ckpt, tokenizer)
        compress_command(
            [str(short_clip), str(tmp_path / "x.lfq"), "--tokenizer", str(tokenizer), "--prior", "factorized"]
        )
    with pytest.raises(SystemExit, match="--prior mlm needs --mlm"):
        compress_command([str(short_clip), str(tmp_path / "x.lfq"), "--prior", "mlm"])
    with pytest.raises(SystemExit, match="input video 'none.mp4' not found"):
        compress_command(["none.mp4", str(tmp_path / "x.lfq"), "--tokenizer", str(tokenizer_ckpt)])
    (tmp_path / "junk.lfq").write_bytes(b"RIFF0000")
    with pytest.raises(SystemExit, match="junk.lfq: header .*not an lfq-kit compressed file"):
        decompress_command([str(tmp_path / "junk.lfq"), str(tmp_path / "x.mp4")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.lfq", "last.ckpt"]


def _doc_commands() -> list[list[str]]:
    """The lfq-kit commands of docs/compression.md's bash blocks (``bash chain`` ones included), in order."""
    text = (ROOT / "docs" / "compression.md").read_text()
    lines = []
    for block in re.findall(r"^```bash(?: chain)?\n(.*?)^```", text, re.S | re.M):
        lines += [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


def _adapted(argv: list[str], clip: Path) -> list[str]:
    """The documented command at test size: the short clip for any sample clip, 16 × 16 (the tiny masked LM's
    size), 10 frames for rd, 3 masked-LM coding steps."""
    out = [str(clip) if a.startswith("sample:") else a for a in argv]
    out = ["16" if prev == "--resolution" else ("10" if prev == "--frames" else a) for prev, a in zip(["", *out], out)]
    if "--mlm" in out and out[1] in ("compress", "rd"):
        out += ["--mlm-steps", "3"]
    return out + ["--no-progress"] if out[1] in ("compress", "decompress") else out


def test_every_command_of_the_compression_docs_runs(
    tokenizer_ckpt, mlm_ckpt, short_clip, tmp_path, monkeypatch, capsys
):
    commands = _doc_commands()
    assert [c[1] for c in commands] == [
        "fit",
        "predict",
        "fit",
        "fit-prior",
        "compress",
        "decompress",
        "compress",
        "decompress",
        "compress",
        "rd",
    ]
    assert [c[3] for c in commands[:3]] == [
        "configs/quickstart.yaml",
        "configs/quickstart_tokens.yaml",
        "configs/quickstart_mlm.yaml",
    ]
    commands = commands[3:]  # the two trainings and the shards: the tiny checkpoints below stand in for them
    for ckpt, folder in ((tokenizer_ckpt, "quickstart"), (mlm_ckpt, "quickstart_mlm")):
        (tmp_path / "runs" / folder / "checkpoints").mkdir(parents=True)
        shutil.copy(ckpt, tmp_path / "runs" / folder / "checkpoints" / "last.ckpt")
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        assert argv[0] == "lfq-kit"
        adapted = _adapted(argv, short_clip)
        assert COMMANDS[adapted[1]](adapted[2:]) == 0, adapted
    for name in ("carphone", "carphone_mlm"):
        assert _frames(tmp_path / "runs" / "compressed" / f"{name}.mp4") == (20, 16, 16)
    assert read_file_header(tmp_path / "runs/compressed/carphone_176x144.lfq").width == 48  # the clip's own size
    table = (tmp_path / "runs" / "rd" / "rd.md").read_text()
    assert "| lfq-kit | mlm |" in table and "| AV1 (SVT-AV1) | crf 63 |" in table
    assert (tmp_path / "runs" / "rd" / "rd.png").stat().st_size > 10_000


def test_rd_skips_what_it_cannot_measure_and_says_so(tokenizer_ckpt, tmp_path, capsys):
    tokenizer = tmp_path / "tok.ckpt"
    shutil.copy(tokenizer_ckpt, tokenizer)  # no tok.prior.safetensors beside it
    assert (
        rd_command(
            [
                "--tokenizer",
                str(tokenizer),
                "--resolution",
                "16",
                "--frames",
                "5",
                "--codecs",
                "h264",
                "--crf-h264",
                "40",
                "30",
                "--output",
                str(tmp_path / "rd"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert f"note: factorized prior skipped: no {tmp_path / 'tok.prior.safetensors'}" in text
    assert "note: LPIPS skipped: no local AlexNet weights" in text
    rows = (tmp_path / "rd" / "rd.csv").read_text().splitlines()
    assert rows[0] == "method,setting,bytes,bpp,psnr,ms_ssim,lpips" and len(rows) == 4  # packed, crf 30, crf 40
    assert rows[1].startswith("lfq-kit,packed,") and rows[2].startswith("H.264 (libx264),crf 30,")
    assert not list((tmp_path / "rd").glob(".*"))
