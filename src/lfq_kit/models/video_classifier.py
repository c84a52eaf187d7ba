"""Action recognition by fine-tuning a pretrained video backbone (VideoMAE, arXiv 2203.12602, Sec. 4; reference
Sec. 5): mean pooling of the backbone's features (or VideoMAE's ``fc_norm(mean(tokens))``) and a linear head
with dropout, layer-wise lr decay, mixup/CutMix
for video with soft-target cross-entropy and label smoothing, a linear-probe mode, and multi-view testing.

Backbones: a :class:`lfq_kit.backbones.VideoViT` (token features ``(B, N, D)``, averaged over ``N``) or any
registered encoder returning ``(B, D, T', H', W')`` (e.g. the tokenizer's ``Magvit2Encoder``; averaged over
``T', H', W'``), ``D`` read from its ``dim`` or ``out_channels``. Layer-wise decay needs the ViT's ``layer_id``.

Weights come from a pretraining checkpoint given as ``pretrained`` (:func:`lfq_kit.models._pretrained.
load_backbone_weights`, exact key match unless ``skip_keys``); ``--ckpt_path`` resumes a classifier run instead.

Testing: every batch must carry ``video_index`` and ``view_index`` (the clip data modules' test loaders do, with
``test_clips_per_video`` × ``test_crops`` views per video); views are averaged per video by
:class:`lfq_kit.metrics.MultiViewAccuracy` from the views of all ranks, and ``test/top1``,
``test/top5`` (percent, torchmetrics) and ``test/videos`` are logged, each video counted once.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from timm.layers import trunc_normal_
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..metrics.multiview import MultiViewAccuracy, VideoScores
from ._checks import check_class_labels
from ._hparams import save_init_config
from ._layer_decay import layer_decay_groups
from ._nonfinite import NonFiniteGuard, SkipNonFiniteSteps
from ._pretrained import load_backbone_weights
from ._step_seed import StepSeeded
from ._training import build_optimizer, compile_modules, no_weight_decay_names, recipe_adamw, step_scheduler
from ._video_mixup import VideoMixup

__all__ = ["PoolingKind", "VideoClassifier"]

PoolingKind = Literal["mean", "fc_norm"]


def _feature_dim(backbone: nn.Module) -> int:
    for attr in ("dim", "out_channels"):
        value = getattr(backbone, attr, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"backbone {type(backbone).__name__} exposes neither `dim` nor `out_channels`")


class VideoClassifier(StepSeeded, SkipNonFiniteSteps, L.LightningModule):
    """Clip classifier. Batches: ``"video"`` ``(B, 3, T, H, W)`` float in ``[−1, 1]``, ``"label"`` ``(B,)``
    int64 in ``[0, num_classes)``; test batches also ``"video_index"``, ``"view_index"`` ``(B,)`` int64.

    Args:
        backbone: video backbone (see the module docstring), e.g. ``VideoViTB`` with ``drop_path: 0.1``.
        num_classes: classes ``K``.
        pretrained: pretraining checkpoint whose backbone tensors are loaded when a run is set up (None: from
            scratch), see :meth:`load_pretrained`.
        pretrained_prefix: key prefix of the backbone in that checkpoint (``encoder.`` for VideoMAEPretraining).
        skip_keys: shell patterns of backbone keys not loaded (e.g. ``["pos_embed"]``); others must all match.
        linear_probe: freeze the backbone (kept in eval mode) and train a BatchNorm (no affine) + linear head,
            MAE's linear probing.
        head_dropout: dropout before the head (VideoMAE: 0.0 on Kinetics, 0.5 on UCF-101).
        pooling: ``"mean"``: the mean of the backbone's features; ``"fc_norm"``: VideoMAE's, a LayerNorm after the
            mean (MCG-NJU ``modeling_finetune.py`` ``use_mean_pooling``; transformers ``VideoMAEForVideoClassification``
            ``fc_norm``), with a backbone built without its final norm (``final_norm: false``); its weights are
            ``fc_norm.*``.
        fc_norm_eps: that LayerNorm's epsilon (MCG-NJU 1e-6; transformers 1e-5).
        init_scale: the head's trunc-normal (std 0.02) weight is multiplied by this at construction (VideoMAE's
            fine-tuning: 0.001; 1.0 leaves it).
        layer_decay: layer-wise lr decay (0.75; 1.0 disables it), see :mod:`lfq_kit.models._layer_decay`.
        mixup_alpha, cutmix_alpha, mixup_prob, mixup_switch_prob: :class:`~lfq_kit.models._video_mixup.VideoMixup`
            (0.8, 1.0, 1.0, 0.5; alphas 0 disable mixing).
        label_smoothing: of the training targets (0.1).
        base_lr: learning rate per 256 clips of effective batch (1e-3); ``lr``: an absolute one instead.
        betas, weight_decay: AdamW's ((0.9, 0.999), 0.05; none on biases, norms and position embeddings).
        warmup_steps, decay_steps, min_lr_ratio: warm-up then cosine (decay_steps None: ``trainer.max_steps``).
        max_nonfinite_steps: a step whose loss is NaN or infinite is skipped (weights, optimizer and schedule
            unchanged, counted in ``train/nonfinite_skipped``); after this many in a row the run stops with
            :class:`~lfq_kit.models._nonfinite.NonFiniteLossError`.
        optimizer: optimizer factory (``class_path`` + ``init_args`` in YAML; its own ``lr``, the layer scales
            applied on top); None: AdamW with ``lr``/``base_lr``, ``betas`` and ``weight_decay`` above.
        compile: ``torch.compile`` the backbone in ``configure_model`` (the head stays eager).

    Training re-seeds torch's global generator at every batch (:class:`~lfq_kit.models._step_seed.StepSeeded`),
    so mixup / CutMix draws and drop path are the same in a resumed run as in one never stopped. ``val/loss`` is
    a clip-weighted :class:`~torchmetrics.MeanMetric`: over several ranks (unpadded, uneven shards) it is the
    mean over every clip.

    Raises:
        ValueError: ``num_classes < 2``; ``layer_decay < 1`` with a backbone without ``layer_id``/``depth``;
            a ``pretrained`` checkpoint that does not match (keys listed, at setup); labels out of range; a test
            batch without view keys.
        FileNotFoundError: ``pretrained`` does not exist (raised at setup, i.e. when ``fit``/``test`` starts, or by
            :meth:`load_pretrained`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        pretrained: str | None = None,
        pretrained_prefix: str = "encoder.",
        skip_keys: list[str] | None = None,
        linear_probe: bool = False,
        head_dropout: float = 0.0,
        pooling: PoolingKind = "mean",
        fc_norm_eps: float = 1e-6,
        init_scale: float = 1.0,
        layer_decay: float = 0.75,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        mixup_prob: float = 1.0,
        mixup_switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        base_lr: float = 1e-3,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.05,
        warmup_steps: int = 50,
        decay_steps: int | None = None,
        min_lr_ratio: float = 1e-3,
        max_nonfinite_steps: int = 3,
        optimizer: OptimizerCallable | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        save_init_config(self)
        self.nonfinite_guard = NonFiniteGuard(max_nonfinite_steps)
        self.val_loss = MeanMetric()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if pooling not in ("mean", "fc_norm"):
            raise ValueError(f"pooling must be 'mean' or 'fc_norm', got {pooling!r}")
        dim = _feature_dim(backbone)
        layered = hasattr(backbone, "layer_id") and hasattr(backbone, "depth")
        if layer_decay != 1.0 and not linear_probe and not layered:
            raise ValueError(
                f"layer_decay {layer_decay} needs a backbone with `layer_id` and `depth` (a VideoViT); "
                f"{type(backbone).__name__} has none, set layer_decay: 1.0"
            )
        self.backbone = backbone
        self.num_classes = num_classes
        self.loaded_keys: list[str] = []  # filled by load_pretrained(), at setup: a missing file is then a plain
        # FileNotFoundError, not one buried in the CLI's config validation
        if linear_probe:
            backbone.requires_grad_(False)
        self.probe_norm = nn.BatchNorm1d(dim, affine=False) if linear_probe else nn.Identity()
        self.fc_norm = nn.LayerNorm(dim, eps=fc_norm_eps) if pooling == "fc_norm" else nn.Identity()
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(dim, num_classes)
        trunc_normal_(self.head.weight, std=0.02)
        with torch.no_grad():
            self.head.weight.mul_(init_scale)
        nn.init.zeros_(self.head.bias)
        self.mixup = VideoMixup(num_classes, mixup_alpha, cutmix_alpha, mixup_prob, mixup_switch_prob, label_smoothing)
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.test_views = MultiViewAccuracy(num_classes)
        self.test_scores: VideoScores | None = None
        self.optimizer_factory = optimizer
        self._labels_checked = False
        self._compiled = False

    # -- pretrained weights --------------------------------------------------------------------------------

    def load_pretrained(self) -> list[str]:
        """Load the ``pretrained`` checkpoint's backbone tensors now (exact key match unless ``skip_keys``);
        returns the loaded keys (also in ``loaded_keys``; empty without ``pretrained``).

        Raises:
            FileNotFoundError: no file at ``pretrained`` (the message names it and the command that writes it).
            ValueError: the checkpoint does not match the backbone (keys listed).
        """
        hp = self.hparams
        if hp.pretrained is not None:
            self.loaded_keys = load_backbone_weights(self.backbone, hp.pretrained, hp.pretrained_prefix, hp.skip_keys)
        return self.loaded_keys

    def setup(self, stage: str) -> None:
        """Load ``pretrained`` once per run, before training or testing starts; skipped when the trainer restores
        a ``ckpt_path`` (its weights replace the backbone's anyway, and the pretraining file need not exist)."""
        restoring = self._trainer is not None and self.trainer.ckpt_path is not None
        if self.hparams.pretrained is not None and not self.loaded_keys and not restoring:
            self.load_pretrained()

    def configure_model(self) -> None:
        """Lightning hook (under the strategy): ``torch.compile`` the backbone in place when ``compile``."""
        compile_modules(self, [self.backbone])

    # -- the network -------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> VideoClassifier:
        super().train(mode)
        if self.hparams.linear_probe:
            self.backbone.eval()  # frozen: no dropout / drop path / norm statistics updates
        return self

    def features(self, video: Tensor) -> Tensor:
        """Mean-pooled backbone features ``(B, D)`` (then ``fc_norm`` with ``pooling: fc_norm``)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.hparams.linear_probe):
            out = self.backbone(video)
        if out.ndim == 3:
            return self.fc_norm(out.mean(1))
        if out.ndim == 5:
            return self.fc_norm(out.mean((2, 3, 4)))
        if out.ndim == 2:
            return self.fc_norm(out)
        raise ValueError(f"backbone output must be (B, N, D), (B, D, T, H, W) or (B, D), got {tuple(out.shape)}")

    def forward(self, video: Tensor) -> Tensor:
        """``(B, 3, T, H, W)`` → logits ``(B, K)``."""
        return self.head(self.dropout(self.probe_norm(self.features(video))))

    # -- steps ---------------------------------------------------------------------------------------------

    def _labels(self, batch: dict[str, Any]) -> Tensor:
        labels = torch.as_tensor(batch["label"], device=self.device).long()
        if not self._labels_checked:  # once per run: no device sync per step
            check_class_labels(labels, self.num_classes)
            self._labels_checked = True
        return labels

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        mixed = self.mixup(batch["video"], self._labels(batch))
        loss = F.cross_entropy(self(mixed.video).float(), mixed.targets)  # soft (mixed, smoothed) targets
        self.log("train/loss", loss.detach(), prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        labels = self._labels(batch)
        logits = self(batch["video"])
        self.val_top1.update(logits, labels)
        self.val_loss.update(F.cross_entropy(logits.float(), labels), weight=labels.shape[0])
        self.log("val/loss", self.val_loss)
        self.log("val/top1", self.val_top1, prog_bar=True)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        missing = [k for k in ("video_index", "view_index") if k not in batch]
        if missing:
            raise ValueError(
                f"multi-view testing needs batch keys {missing}; use a clip data module's test loader "
                "(test_clips_per_video x test_crops views per video)"
            )
        probs = self(batch["video"]).float().softmax(-1)
        self.test_views.update(probs, self._labels(batch), batch["video_index"], batch["view_index"])

    def on_test_epoch_start(self) -> None:
        self.test_views.reset()

    def on_test_epoch_end(self) -> None:
        top1, top5, videos = self.test_views.compute()  # every rank's views, each video once
        self.test_scores = self.test_views.scores()
        self.test_views.reset()
        self.log_dict(
            {"test/top1": top1, "test/top5": top5, "test/videos": float(videos)}, sync_dist=True
        )  # equal on every rank: gathered

    # -- optimizer -----------------------------------------------------------------------------------------

    def _layer_id(self, name: str) -> int:
        depth = getattr(self.backbone, "depth", 0)
        if name.startswith("backbone.") and hasattr(self.backbone, "layer_id"):
            return self.backbone.layer_id(name[len("backbone.") :])
        return depth + 1

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        skip = no_weight_decay_names(self)
        groups = layer_decay_groups(
            self.named_parameters(),
            self._layer_id,
            getattr(self.backbone, "depth", 0),
            1.0 if hp.linear_probe else hp.layer_decay,
            lambda name, _: name in skip,
        )
        return step_scheduler(build_optimizer(self.optimizer_factory or recipe_adamw(self), self, groups), self)
