"""The video classifier: exact pretrained loading, layer-wise lr decay through the scheduler, video mixup/CutMix,
multi-view aggregation (invariant 20), linear probing, and fitting a tiny set of real clips."""

import lightning as L
import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

from lfq_kit.backbones import VideoViTTiny
from lfq_kit.metrics.multiview import aggregate_views
from lfq_kit.models import VideoClassifier, VideoMAEPretraining
from lfq_kit.models._layer_decay import layer_scale
from lfq_kit.models._video_mixup import VideoMixup, smooth_one_hot


def vit(**kw):
    args = dict(
        clip_size=(5, 16, 16), tubelet_size=2, patch_size=4, first_frame_patch=True, dim=32, depth=3, num_heads=2
    )
    return VideoViTTiny(**{**args, **kw})


@pytest.fixture
def mae_ckpt(tmp_path):
    mae = VideoMAEPretraining(vit(), decoder_dim=32, decoder_depth=1, decoder_heads=2)
    for p in mae.encoder.parameters():
        torch.nn.init.normal_(p)  # distinct from any fresh initialisation
    path = tmp_path / "mae.ckpt"
    torch.save({"state_dict": mae.state_dict()}, path)
    return path, mae


def test_fine_tuning_loads_exactly_the_pretrained_backbone_tensors(mae_ckpt):
    path, mae = mae_ckpt
    model = VideoClassifier(vit(), num_classes=4, pretrained=str(path))
    theirs = mae.encoder.state_dict()
    weight = "blocks.0.attn.qkv.weight"
    assert model.loaded_keys == [] and not torch.equal(model.backbone.state_dict()[weight], theirs[weight])
    assert sorted(model.load_pretrained()) == sorted(theirs)
    mine = model.backbone.state_dict()
    assert sorted(model.loaded_keys) == sorted(theirs) == sorted(mine)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert not any(k.startswith("decoder") for k in model.state_dict())


def test_mismatched_keys_are_listed_unless_skipped(mae_ckpt):
    path, _ = mae_ckpt
    with pytest.raises(ValueError, match=r"missing: pos_embed"):
        VideoClassifier(vit(position="learned"), num_classes=4, pretrained=str(path)).load_pretrained()
    model = VideoClassifier(vit(position="learned"), num_classes=4, pretrained=str(path), skip_keys=["pos_embed"])
    assert "pos_embed" not in model.load_pretrained()
    with pytest.raises(ValueError, match=r"unexpected: blocks\.2\..*"):
        VideoClassifier(vit(depth=2), num_classes=4, pretrained=str(path)).load_pretrained()
    with pytest.raises(ValueError, match=r"no tensor under prefix 'backbone\.'"):
        VideoClassifier(vit(), num_classes=4, pretrained=str(path), pretrained_prefix="backbone.").load_pretrained()
    missing = VideoClassifier(vit(), num_classes=4, pretrained=str(path) + ".missing")  # building it is fine
    with pytest.raises(FileNotFoundError, match="not found"):
        missing.load_pretrained()


def test_pretrained_weights_load_at_setup_unless_a_checkpoint_is_restored(mae_ckpt, tmp_path):
    path, mae = mae_ckpt

    class Trainer:  # the two things setup reads
        ckpt_path = None

    model = VideoClassifier(vit(), num_classes=4, pretrained=str(path))
    model._trainer = Trainer()
    model.setup("fit")
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in mae.encoder.state_dict().items())
    restored = VideoClassifier(vit(), num_classes=4, pretrained=str(path) + ".missing")
    restored._trainer = Trainer()
    restored._trainer.ckpt_path = str(tmp_path / "run.ckpt")
    restored.setup("test")  # resuming / testing a checkpoint: its weights win, the pretraining file is not needed
    assert restored.loaded_keys == []
    with pytest.raises(FileNotFoundError, match=r"\.missing' not found"):
        VideoClassifier(vit(), num_classes=4, pretrained=str(path) + ".missing").setup("fit")


def test_layer_wise_scales_reach_the_optimizer_at_every_scheduler_step():
    assert layer_scale(0, 12, 0.75) == pytest.approx(0.0238, abs=1e-4)
    assert layer_scale(1, 12, 0.75) == pytest.approx(0.0317, abs=1e-4)
    assert layer_scale(12, 12, 0.75) == 0.75 and layer_scale(13, 12, 0.75) == 1.0
    model = VideoClassifier(vit(), num_classes=4, layer_decay=0.5, lr=1e-2, warmup_steps=3, decay_steps=10)
    config = model.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(sched, LambdaLR)
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    expected = {
        "backbone.patch_embed.proj.weight": 0.5**4,
        "backbone.blocks.0.mlp.fc1.weight": 0.5**3,
        "backbone.blocks.2.attn.qkv.bias": 0.5,
        "backbone.norm.weight": 1.0,
        "head.weight": 1.0,
    }
    params = dict(model.named_parameters())
    assert "backbone.pos_embed" not in params  # the sincos table is a buffer: nothing to train
    for name, scale in expected.items():
        assert group_of[id(params[name])]["lr_scale"] == pytest.approx(scale), name
    assert group_of[id(params["head.bias"])]["weight_decay"] == 0.0
    assert group_of[id(params["head.weight"])]["weight_decay"] == 0.05
    for _ in range(6):
        opt.step()
        sched.step()
        head = group_of[id(params["head.weight"])]["lr"]
        for g in opt.param_groups:
            assert g["lr"] == pytest.approx(head * g["lr_scale"])
    assert head == pytest.approx(1e-2 * sched.lr_lambdas[0](6))


def test_the_cutmix_box_is_the_same_in_every_frame():
    torch.manual_seed(3)
    mix = VideoMixup(5, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    video = torch.arange(4, dtype=torch.float32)[:, None, None, None, None].expand(4, 3, 6, 16, 16).clone()
    out = mix(video, torch.tensor([0, 1, 2, 3]))
    top, left, h, w = out.box
    assert h * w > 0
    pasted = out.video[0] == 3  # sample 0 received sample 3 (the mirrored position) inside the box only
    assert (pasted == pasted[:, :1]).all()  # same box in every frame and channel
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[top : top + h, left : left + w] = True
    assert torch.equal(pasted[0, 0], region)
    lam = 1 - h * w / 256
    assert out.lam == pytest.approx(lam)
    torch.testing.assert_close(out.targets[0], torch.tensor([lam, 0, 0, 1 - lam, 0]))


def test_mixup_mixes_whole_clips_with_smoothed_soft_targets():
    torch.manual_seed(0)
    mix = VideoMixup(4, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1)
    video, labels = torch.randn(2, 3, 5, 8, 8), torch.tensor([0, 2])
    out = mix(video, labels)
    torch.testing.assert_close(out.video, out.lam * video + (1 - out.lam) * video.flip(0))
    soft = smooth_one_hot(labels, 4, 0.1)
    assert soft[0].tolist() == pytest.approx([0.925, 0.025, 0.025, 0.025])
    torch.testing.assert_close(out.targets, out.lam * soft + (1 - out.lam) * soft.flip(0))
    torch.testing.assert_close(out.targets.sum(1), torch.ones(2))


def test_multi_view_aggregation_matches_a_manual_computation_and_counts_each_video_once():
    probs = torch.softmax(torch.randn(7, 3), -1)
    videos = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    views = torch.tensor([0, 1, 0, 1, 2, 0, 0])  # the last row repeats view (0, 0): a padding repeat
    labels = torch.tensor([2, 2, 0, 0, 0, 1, 2])
    probs[6] = torch.tensor([1.0, 0.0, 0.0])  # a differing copy would change the mean if counted
    scores = aggregate_views(probs, labels, videos, views)
    assert scores.videos.tolist() == [0, 1, 2] and scores.views.tolist() == [2, 3, 1]
    manual = torch.stack([probs[0:2].mean(0), probs[2:5].mean(0), probs[5]])
    torch.testing.assert_close(scores.probs, manual)
    assert scores.labels.tolist() == [2, 0, 1]
    # two "ranks" whose padded shards overlap give the same result as one rank
    rank0, rank1 = [0, 2, 4, 6], [1, 3, 5, 0]
    order = torch.tensor(rank0 + rank1)
    again = aggregate_views(probs[order], labels[order], videos[order], views[order])
    torch.testing.assert_close(again.probs, manual)


class _Clips(L.LightningDataModule):
    batch_size = 8

    def __init__(self, video, labels):
        super().__init__()
        self.video, self.labels = video, labels

    def train_dataloader(self):
        return DataLoader([{"video": self.video, "label": self.labels}] * 200, batch_size=None)  # the same batch


def _real_clips():
    from lfq_kit.data import CameraMotionDataset

    data = CameraMotionDataset(
        ("carphone_pristine.mp4",), frames_per_clip=5, resolution=16, train=False, segments=1, video_frames=5
    )
    items = [data[i] for i in range(len(data))]  # the 7 motions of one real segment
    return torch.stack([i["video"] for i in items]), torch.tensor([i["label"] for i in items])


def test_a_classifier_reaches_full_training_accuracy_on_a_tiny_real_clip_set(tmp_path, monkeypatch):
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is ~20x faster on the shared 2-core machine
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    video, labels = _real_clips()
    model = VideoClassifier(
        vit(depth=2),
        num_classes=7,
        layer_decay=1.0,
        mixup_alpha=0.0,
        cutmix_alpha=0.0,
        label_smoothing=0.0,
        lr=3e-3,
        warmup_steps=0,
        weight_decay=0.0,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=200,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    try:
        trainer.fit(model, datamodule=_Clips(video, labels))
    finally:
        monkeypatch.undo()
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        assert (model(video).argmax(-1) == labels).all()  # all 7 motions of a held-out segment


def test_linear_probe_trains_the_head_only(mae_ckpt):
    path, _ = mae_ckpt
    model = VideoClassifier(vit(), num_classes=4, pretrained=str(path), linear_probe=True, lr=1e-2, warmup_steps=0)
    model.load_pretrained()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    opt = model.configure_optimizers()["optimizer"]
    assert sum(len(g["params"]) for g in opt.param_groups) == 2  # head weight and bias (the norm has no affine)
    model.train()
    assert not model.backbone.training
    loss = model.training_step({"video": torch.randn(4, 3, 5, 16, 16), "label": torch.tensor([0, 1, 2, 3])}, 0)
    loss.backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert model.head.weight.grad is not None


def test_bad_labels_and_test_batches_without_views_are_refused():
    model = VideoClassifier(vit(), num_classes=3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got \[0, 5\]"):
        model.training_step({"video": torch.randn(2, 3, 5, 16, 16), "label": torch.tensor([0, 5])}, 0)
    with pytest.raises(ValueError, match="video_index"):
        model.test_step({"video": torch.randn(2, 3, 5, 16, 16), "label": torch.tensor([0, 1])}, 0)
    with pytest.raises(ValueError, match="layer_decay 0.75 needs a backbone with `layer_id`"):
        VideoClassifier(torch.nn.Conv3d(3, 4, 1), num_classes=3)


def test_the_tokenizer_cnn_encoder_serves_as_a_classification_backbone():
    from tokenizer_checkpoint import TINY_BACKBONE

    from lfq_kit.backbones import Magvit2Encoder
    from lfq_kit.registry import BACKBONES

    assert BACKBONES.get("Magvit2Encoder") is Magvit2Encoder and BACKBONES.get("VideoViTB").__name__ == "VideoViTB"
    model = VideoClassifier(Magvit2Encoder(out_channels=18, **TINY_BACKBONE), num_classes=3, layer_decay=1.0)
    video = torch.randn(2, 3, 5, 16, 16)
    with torch.no_grad():
        expected = model.head(model.backbone(video).mean((2, 3, 4)))  # mean over T', H', W' of (B, D, T', H', W')
        torch.testing.assert_close(model.eval()(video), expected)
