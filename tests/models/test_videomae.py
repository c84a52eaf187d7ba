"""VideoMAE-style pretraining: tube masks (invariant 19), normalized pixel targets, visible-only encoding, token
targets from the frozen tokenizer, grid alignment, optimizer defaults and the tokenizer-hash refusal."""

import lightning as L
import pytest
import torch

from lfq_kit.backbones import VideoViTTiny, tubelet_grid
from lfq_kit.models import FrozenTokenizer, VideoMAEPretraining
from lfq_kit.models._pixel_targets import normalized_tubelets
from lfq_kit.models._tube_masking import tube_mask


def tiny_vit(**kw):
    args = dict(
        clip_size=(5, 16, 16), tubelet_size=2, patch_size=2, first_frame_patch=True, dim=32, depth=2, num_heads=2
    )
    return VideoViTTiny(**{**args, **kw})


def tiny_mae(**kw):
    return VideoMAEPretraining(tiny_vit(), decoder_dim=32, decoder_depth=1, decoder_heads=2, **kw)


def test_tube_mask_is_the_same_in_every_frame_with_an_exact_equal_count():
    grid = (4, 7, 7)
    m = tube_mask(16, grid, 0.9, generator=torch.Generator().manual_seed(0))
    mask = m.mask.view(16, *grid)
    assert (mask == mask[:, :1]).all()  # identical across time
    per_frame = mask.flatten(2).sum(-1)
    assert (per_frame == int(0.9 * 49)).all()  # exactly int(ratio · H'W') = 44 per frame, every sample
    assert len({tuple(r.tolist()) for r in mask[:, 0].flatten(1)}) > 1  # samples differ
    # visible and masked partition the tokens, ascending, and agree with the boolean mask
    both = torch.cat([m.visible, m.masked], 1).sort(1).values
    assert (both == torch.arange(4 * 49)).all()
    assert not m.mask.gather(1, m.visible).any() and m.mask.gather(1, m.masked).all()
    assert (m.visible.diff(dim=1) > 0).all() and m.visible.shape == (16, 4 * 5)


def test_tube_mask_refuses_ratios_that_leave_nothing():
    with pytest.raises(ValueError, match="masks 49 of the 49"):
        tube_mask(1, (2, 7, 7), 1.0)
    with pytest.raises(ValueError, match="masks 0 of the 4"):
        tube_mask(1, (2, 2, 2), 0.2)


def test_normalized_pixel_targets_match_a_hand_computed_tubelet():
    video = torch.randn(2, 3, 5, 4, 4)
    out = normalized_tubelets(video, 2, 2, first_frame_patch=True)  # grid 3 x 2 x 2, 2·2·2·3 = 24 values
    assert out.shape == (2, 12, 24)
    # token 2·4 + 0·2 + 1: frame group 2 (frames 3, 4), row 0, column 1
    tube = video[1, :, 3:5, 0:2, 2:4]  # (C, t, p, p)
    flat = tube.permute(1, 2, 3, 0).reshape(8, 3)  # (t p p, C)
    expected = (flat - flat.mean(0)) / (flat.std(0, unbiased=True) + 1e-6)
    torch.testing.assert_close(out[1, 2 * 4 + 0 * 2 + 1], expected.reshape(-1))
    # first-frame token: the 1 x 2 x 2 patch normalized alone, repeated over the tubelet's 2 frames
    patch = video[0, :, 0, 2:4, 0:2].permute(1, 2, 0).reshape(4, 3)
    norm = (patch - patch.mean(0)) / (patch.std(0, unbiased=True) + 1e-6)
    torch.testing.assert_close(out[0, 2], norm.repeat(2, 1).reshape(-1))


def test_a_constant_tubelet_gives_zero_targets_not_nan():
    out = normalized_tubelets(torch.full((1, 3, 4, 4, 4), 0.3), 2, 2)
    assert torch.isfinite(out).all() and (out == 0).all()


def test_the_encoder_never_sees_masked_tokens():
    vit = tiny_vit().eval()
    video = torch.randn(2, 3, 5, 16, 16)
    m = tube_mask(2, vit.grid, 0.75, generator=torch.Generator().manual_seed(1))
    before = vit(video, m.visible)
    # replace the content of every masked position (every frame: the mask is a tube) with noise
    spatial = m.mask.view(2, *vit.grid)[:, 0]  # (B, 8, 8)
    pixels = spatial.repeat_interleave(2, 1).repeat_interleave(2, 2)[:, None, None]  # (B, 1, 1, 16, 16)
    changed = torch.where(pixels, torch.randn_like(video) * 5, video)
    assert not torch.equal(changed, video)
    torch.testing.assert_close(vit(changed, m.visible), before)
    assert before.shape == (2, m.visible.shape[1], 32)
    # the full encoder does see them
    assert not torch.allclose(vit(changed), vit(video))


def test_pixel_pretraining_trains_with_videomae_defaults():
    model = tiny_mae()
    hp = model.hparams
    assert (hp.mask_ratio, hp.decoder_dim, tuple(hp.betas), hp.weight_decay, hp.target) == (
        0.9,
        32,
        (0.9, 0.95),
        0.05,
        "pixels",
    )
    default = VideoMAEPretraining(tiny_vit())
    assert default.decoder.dim == 16 and len(default.decoder.blocks) == 4 and default.hparams.mask_ratio == 0.9
    opt = model.configure_optimizers()["optimizer"]
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["lr"] == pytest.approx(1.5e-4 / 256)  # batch 1
    no_decay = {id(p) for p in opt.param_groups[1]["params"]}
    assert id(model.decoder.mask_token) in no_decay and id(model.encoder.blocks[0].attn.qkv.weight) not in no_decay
    video = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    loss = model.loss(video)
    loss.backward()
    assert torch.isfinite(loss) and model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0


def test_token_targets_are_the_tokenizer_ids_at_masked_positions(tokenizer_ckpt):
    model = tiny_mae(target="tokens", tokenizer=str(tokenizer_ckpt))
    assert model.tokens.sub_vocab == 512 and model.grid == (3, 8, 8)
    video = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    masked = tube_mask(2, model.grid, 0.9).masked
    ids = FrozenTokenizer(tokenizer_ckpt).encode(video)  # (2, 3, 8, 8)
    expected = torch.stack([ids[b].flatten()[masked[b]] for b in range(2)])
    assert torch.equal(model.targets(video, masked), expected)
    assert torch.isfinite(model.loss(video))


def test_a_vit_grid_other_than_the_token_grid_is_refused_with_both(tokenizer_ckpt):
    vit = tiny_vit(first_frame_patch=False, tubelet_size=1)  # grid (5, 8, 8)
    with pytest.raises(ValueError, match=r"ViT grid \(5, 8, 8\).*token grid \(3, 8, 8\)"):
        VideoMAEPretraining(vit, target="tokens", tokenizer=str(tokenizer_ckpt))
    with pytest.raises(ValueError, match="needs `tokenizer`"):
        VideoMAEPretraining(tiny_vit(), target="tokens")


def test_the_documented_magvit2_alignment():
    assert tubelet_grid((17, 128, 128), 4, 8, True) == (5, 16, 16)
    assert tubelet_grid((17, 64, 64), 4, 8, True) == (5, 8, 8)
    assert tubelet_grid((16, 224, 224), 2, 16) == (8, 14, 14)
    with pytest.raises(ValueError, match="T=16 must be 1 \\+ a multiple of tubelet_size=4"):
        tubelet_grid((16, 64, 64), 4, 8, True)


def test_a_changed_tokenizer_is_refused_on_load(tokenizer_ckpt, tmp_path):
    model = tiny_mae(target="tokens", tokenizer=str(tokenizer_ckpt))
    checkpoint = {}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["tokenizer"] == {"path": str(tokenizer_ckpt), "hash": model.frozen_tokenizer.hash}
    checkpoint["tokenizer"]["hash"] = "0" * 64
    with pytest.raises(ValueError, match="VideoMAEPretraining was trained on the tokens of tokenizer"):
        model.on_load_checkpoint(checkpoint)


def test_lr_scales_with_the_effective_batch(tmp_path):
    class Data(L.LightningDataModule):
        batch_size = 64

    model = tiny_mae(warmup_steps=0)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=10,
        accumulate_grad_batches=2,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.datamodule = Data()
    model.trainer = trainer
    opt = model.configure_optimizers()["optimizer"]
    assert opt.param_groups[0]["lr"] == pytest.approx(1.5e-4 * 128 / 256)


def test_the_default_decoder_is_videomaes_for_the_encoder_width():
    from lfq_kit.backbones import VideoViTB, VideoViTS
    from lfq_kit.backbones.masked_decoder import videomae_decoder_size

    # VideoMAE's pretraining models: ViT-S 384 -> 192 x 3 heads, ViT-B 768 -> 384 x 6, ViT-L 1024 -> 512 x 8
    assert [videomae_decoder_size(d) for d in (384, 768, 1024)] == [(192, 3), (384, 6), (512, 8)]
    assert videomae_decoder_size(128) == (64, 1) and videomae_decoder_size(384, 256) == (256, 4)
    assert videomae_decoder_size(384, num_heads=6) == (192, 6)
    clip = {"clip_size": (2, 32, 32), "tubelet_size": 2, "patch_size": 8}
    for vit, (dim, heads) in ((VideoViTS(**clip, depth=1), (192, 3)), (VideoViTB(**clip, depth=1), (384, 6))):
        decoder = VideoMAEPretraining(vit).decoder
        assert (decoder.dim, decoder.blocks[0].attn.num_heads, len(decoder.blocks)) == (dim, heads, 4)
        assert VideoMAEPretraining(vit).head.in_features == dim
