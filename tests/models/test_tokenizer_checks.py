"""VideoTokenizer boundary checks: NaN/inf pixels, empty batches, dtypes, index layouts, channel pairing,
and the lazy (sync-free) pixel check of later training and validation batches."""

import math

import pytest
import torch
from quiet_trainer import quiet_trainer
from tiny_tokenizer import TINY, RandomClipData, RandomClips, tiny_tokenizer
from torch.utils.data import DataLoader

from lfq_kit.backbones import Image2dDecoder, Image2dEncoder, Magvit2Decoder, Magvit2Encoder
from lfq_kit.models import VideoTokenizer, check_video
from lfq_kit.models._checks import LazyPixelCheck

trainer = quiet_trainer


@pytest.fixture(scope="module")
def model():
    return tiny_tokenizer().eval()


@pytest.fixture
def video():
    return RandomClips(2, frames=5, size=16).videos


@pytest.mark.parametrize("value, message", [(math.nan, "NaN"), (math.inf, "infinite"), (-math.inf, "infinite")])
def test_non_finite_pixels_are_refused(model, video, value, message):
    video[1, 2, 3, 4, 5] = value  # one pixel: min/max comparisons alone let NaN through
    with pytest.raises(ValueError, match=message):
        check_video(video)
    with pytest.raises(ValueError, match=message):
        model.encode(video)


def test_empty_batches_are_refused(model, video):
    with pytest.raises(ValueError, match=r"non-empty video batch .*\(0, 3, 5, 16, 16\)"):
        model.encode(video[:0])
    with pytest.raises(ValueError, match=r"non-empty token indices"):
        model.decode(torch.zeros(0, 3, 8, 8, dtype=torch.long))


def test_float64_and_integer_videos_name_the_dtype_and_the_fix(model, video):
    with pytest.raises(ValueError, match=r"float64; cast with video.float\(\)"):
        model.encode(video.double())
    with pytest.raises(ValueError, match="uint8"):
        model.encode((video * 127.5 + 127.5).to(torch.uint8))


def test_low_precision_videos_are_cast_to_the_encoder_dtype(model, video):
    assert torch.equal(model.encode(video.bfloat16()), model.encode(video.bfloat16().float()))


def test_decode_names_the_expected_index_layout(model):
    with pytest.raises(ValueError, match=r"token indices \(B, T', H', W'\) for a video decoder, got shape \(2, 8, 8\)"):
        model.decode(torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="got dtype torch.bool"):
        model.decode(torch.zeros(1, 3, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="got dtype torch.float32"):
        model.decode(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 64\) \(codebook_size 64\), got min -1 and max 0"):
        model.decode(torch.tensor([0, -1]).view(1, 1, 1, 2))


def test_image_decoders_take_image_indices():
    image = dict(base_channels=8, channel_multipliers=(1, 2), num_res_blocks=1, num_groups=4)
    model = VideoTokenizer(Image2dEncoder(out_channels=6, **image), Image2dDecoder(in_channels=6, **image)).eval()
    indices = model.encode(RandomClips(2, frames=1, size=16).videos)  # (B, 1, H', W')
    assert indices.shape == (2, 1, 8, 8)
    assert model.decode(indices[:, 0]).shape == (2, 3, 16, 16)  # (B, H', W') → images


def test_decoder_channels_must_match_the_encoder():
    with pytest.raises(
        ValueError, match=r"Magvit2Decoder in_channels = 5 differs from encoder Magvit2Encoder out_channels = 6"
    ):
        VideoTokenizer(Magvit2Encoder(out_channels=6, **TINY), Magvit2Decoder(in_channels=5, **TINY))


class _BadBatchData(RandomClipData):
    """Fixed-order clips in which clip ``bad`` gets the pixel ``value`` (batch ``bad // batch_size``)."""

    def __init__(self, bad: int, value: float, stage: str = "train") -> None:
        super().__init__(n=8)
        self.bad, self.value, self.stage = bad, value, stage

    def _clips(self) -> RandomClips:
        clips = RandomClips(self.n, self.frames, self.size)
        clips.videos[self.bad, 0, 1, 2, 3] = self.value
        return clips

    def train_dataloader(self):
        clips = self._clips() if self.stage == "train" else RandomClips(self.n, self.frames, self.size)
        return DataLoader(clips, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self._clips(), batch_size=self.batch_size)


def test_a_later_out_of_range_training_batch_stops_the_run_at_the_next_log_step(tmp_path):
    model = tiny_tokenizer(discriminator=False, ema_decay=None)
    t = trainer(tmp_path, max_steps=8, limit_val_batches=0, log_every_n_steps=2)
    with pytest.raises(
        ValueError, match=r"training batch at generator step 2: expected pixels in \[-1, 1\], got values in \[.*, 255\]"
    ):
        t.fit(model, _BadBatchData(bad=4, value=255.0))  # batch 2; the first batch was range-checked at once
    assert model.generator_step == 4  # read back lazily at the next multiple of log_every_n_steps, not per step


def test_a_later_nan_training_batch_is_refused(tmp_path):
    model = tiny_tokenizer(discriminator=False, ema_decay=None)
    t = trainer(tmp_path, max_steps=8, limit_val_batches=0, log_every_n_steps=2)
    with pytest.raises(ValueError, match="NaN|non-finite"):
        t.fit(model, _BadBatchData(bad=2, value=math.nan))
    assert model.generator_step <= 2


def test_a_nan_first_training_batch_is_refused_before_any_step(tmp_path):
    model = tiny_tokenizer(discriminator=False, ema_decay=None)
    with pytest.raises(ValueError, match="NaN"):
        trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(model, _BadBatchData(bad=1, value=math.nan))
    assert model.generator_step == 0


def test_a_later_bad_validation_batch_is_refused_at_the_epoch_end(tmp_path):
    model = tiny_tokenizer()
    t = trainer(tmp_path)
    with pytest.raises(ValueError, match=r"val batch 1: expected pixels in \[-1, 1\], got values in \[.*, 3\]"):
        t.validate(model, _BadBatchData(bad=3, value=3.0, stage="val"))
    with pytest.raises(ValueError, match="NaN|non-finite"):
        trainer(tmp_path).validate(model, _BadBatchData(bad=3, value=math.nan, stage="val"))


def test_lazy_pixel_check_records_the_first_bad_batch_only(monkeypatch):
    check = LazyPixelCheck()
    assert check.error() is None
    check.observe(torch.zeros(2, 3), 0)
    assert check.error() is None
    with monkeypatch.context() as m:  # observing reads nothing back to the host (a device sync on GPU)
        for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
            m.setattr(torch.Tensor, name, lambda *a: pytest.fail("observe read a value back to the host"))
        check.observe(torch.full((2, 3), 2.0), 1)
        check.observe(torch.full((2, 3), math.nan), 2)
    assert check.error("batch") == "batch 1: expected pixels in [-1, 1], got values in [2, 2]"
    check.reset()
    check.observe(torch.tensor([0.0, math.nan]), 5)
    assert check.error("step").startswith("step 5: expected finite pixels in [-1, 1], got NaN")


def test_under_ddp_every_rank_raises_when_one_saw_a_bad_batch(model):
    """A rank whose own batches were fine still takes part in the vote and raises, so none hangs."""
    votes = []

    class Strategy:
        def reduce_boolean_decision(self, decision, all=True):
            votes.append((decision, all))
            return True  # another rank saw a bad batch

    model._trainer = type("Trainer", (), {"world_size": 2, "strategy": Strategy()})()
    try:
        with pytest.raises(ValueError, match="another rank saw NaN, infinite or out-of-range pixels"):
            model._raise_on_bad_pixels(LazyPixelCheck(), "training batch at generator step")
    finally:
        model._trainer = None
    assert votes == [(False, False)]
