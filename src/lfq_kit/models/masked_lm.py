"""The masked language model over tokenizer tokens (MaskGIT / MAGVIT; MAGVIT-v2, arXiv 2310.05737, Sec. 3.1 token
factorization and Sec. 4 generation).

A bidirectional transformer reads ``[class token | latent tokens]`` with learned position embeddings and predicts
every masked token; ids are embedded and predicted through the factorized tables and tied heads of
:class:`lfq_kit.nn.FactorizedTokens`. Training masks a cosine-scheduled number of random positions per example
and by default scores masked positions only (MAGVIT's weighted positions and MaskGIT's norms are settings, see
:mod:`lfq_kit.models._mlm_recipe`); the class token is replaced by the null ("unconditional") class with
probability ``class_dropout``, which classifier-free guidance needs. :meth:`MaskedLM.generate` samples with
MaskGIT's iterative decoding (:mod:`lfq_kit.models._maskgit`), class-conditionally and/or from condition frames.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric

from ..nn.factorized_tokens import FactorizedTokens
from ._checks import check_class_labels
from ._hparams import save_init_config
from ._maskgit import cosine_mask
from ._mlm_recipe import HeadTransform, LossNormalization, global_weight_share, position_weights, reduce_loss
from ._mlm_sampling import MaskGITSampling
from ._nonfinite import NonFiniteGuard, SkipNonFiniteSteps
from ._step_seed import StepSeeded
from ._token_consumer import TokenConsumer
from ._training import build_optimizer, compile_modules, regroup_optimizer_state, step_scheduler, weight_decay_groups
from .frozen_tokenizer import FrozenTokenizer

__all__ = ["MaskedLM"]


def _default_adamw(params) -> torch.optim.Optimizer:
    """MAGVIT-v2 Sec. 4 / MAGVIT's masked-LM recipe: AdamW, lr 1e-4, β = (0.9, 0.96), weight decay 0.045."""
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.96), weight_decay=0.045)


def _ratio_key(ratio: float) -> str:
    return f"{ratio:g}".replace(".", "_")


class MaskedLM(MaskGITSampling, StepSeeded, SkipNonFiniteSteps, TokenConsumer, L.LightningModule):
    """Masked-token transformer over a tokenizer's ``(T', H', W')`` token grid.

    Batches are dicts with ``"indices"`` ``(B, T', H', W')`` int (token shards, :class:`lfq_kit.data.TokenDataModule`)
    or ``"video"`` ``(B, 3, T, H, W)`` float in ``[−1, 1]`` (tokenized on the fly by the frozen ``tokenizer``), and
    ``"label"`` ``(B,)`` int64 class ids in ``[0, num_classes)`` when ``num_classes > 0``.

    Training loss: by default the mean over masked positions of the summed sub-token cross-entropies (nats),
    label-smoothed; the recipe settings below (:mod:`lfq_kit.models._mlm_recipe`) give MAGVIT's and MaskGIT's.
    Validation logs ``val/bits_per_token_<r>``: the masked-token cross-entropy in bits per token (no smoothing) at
    each fixed mask ratio ``r`` of ``val_mask_ratios`` with a fixed random mask per batch, and their mean
    ``val/bits_per_token``. The uniform code costs ``log2 K`` bits (18 at 2^18).

    Args:
        backbone: a sequence model ``(B, L, D) → (B, L, D)`` with a ``dim`` attribute ``D``, e.g.
            ``TransformerB`` (registered in ``BACKBONES``).
        tokenizer: path of a tokenizer checkpoint (:class:`FrozenTokenizer`); needed for ``"video"`` batches,
            for decoding samples and for frame prediction. Its vocabulary and grid are checked against the others.
        clip_size: ``(T, H, W)`` of the clips; with ``tokenizer`` gives the token grid.
        grid: token grid ``(T', H', W')``; required without ``tokenizer`` + ``clip_size``, else checked.
        codebook_size: vocabulary ``K``; required without ``tokenizer``, else checked.
        num_groups: sub-token groups of the factorization (2 for 2^18 ids: two 512-way heads; 1: none).
        num_classes: classes of the class token; 0 trains an unconditional model (only the null class).
        class_dropout: probability of replacing the class by the null class in training (0.1).
        label_smoothing: of the training cross-entropy (0.1).
        val_mask_ratios: fixed mask ratios of the validation cross-entropy.
        val_unconditional: evaluate with the null class (held-out clips of classes not trained on).
        condition_frames: pixel frames given as the condition in frame prediction (Kinetics-600: 5); the latent
            frames they cover come from the tokenizer's causal compression (5 → 2), never set by hand.
        condition_prob: in training, the fraction of examples whose condition latent frames are never masked
            (the others learn unconditional generation of the whole clip).
        optimizer: optimizer factory; None is AdamW(lr 1e-4, β (0.9, 0.96), weight decay 0.045). Biases, norms,
            embeddings, position embeddings, token tables and the mask token take no weight decay
            (:mod:`lfq_kit.models._training`).
        warmup_steps: linear learning-rate warm-up (optimizer steps).
        decay_steps: cosine decay ends here; None: ``trainer.max_steps`` when set, else no decay.
        min_lr_ratio: final learning rate as a fraction of the initial one.
        max_nonfinite_steps: a step whose loss is NaN or infinite is skipped (weights, optimizer and schedule
            unchanged, counted in ``train/nonfinite_skipped``); after this many in a row the run stops with
            :class:`~lfq_kit.models.NonFiniteLossError`.
        compile: ``torch.compile`` the backbone in ``configure_model`` (embeddings, heads and decoding stay eager).
        mask_weight, refine_weight, recons_weight: loss weight of masked positions, of given condition-frame
            positions and of the other visible positions (MAGVIT ``weight_mode`` "mask+refine+recons"; default
            ``1, 0, 0``: masked positions only).
        loss_normalization: ``"token"`` (weighted mean over the batch's positions) or ``"sequence"`` (per example,
            then over examples: MAGVIT).
        mask_ratio_per: ``"example"`` (one ``r ~ U(0, 1)`` per example) or ``"batch"`` (one for the whole batch:
            MAGVIT). Validation masks are unchanged.
        input_norm: LayerNorm on the summed class/token and position embeddings (MaskGIT ``Embed``).
        head_transform: Dense → GELU → LayerNorm before the tied logits (MaskGIT ``MlmLayer``,
            :class:`~lfq_kit.models._mlm_recipe.HeadTransform`). MAGVIT's UCF-101 label smoothing is 1e-4.
        A checkpoint trained without ``input_norm`` / ``head_transform`` is refused with them on (its weights lack
        them); checkpoints from before these settings load with the defaults.

    Training re-seeds torch's global generator at every batch (:class:`~lfq_kit.models._step_seed.StepSeeded`):
    masks, class dropout and dropout are the same in a resumed run as in one never stopped.

    Raises:
        ValueError: missing or disagreeing vocabulary / grid (both values named); a backbone without ``dim``;
            ``max_nonfinite_steps`` < 1;
            at run time, labels outside ``[0, num_classes)`` or a batch whose grid differs from the model's.
        FileNotFoundError: ``tokenizer`` does not exist (the message says which command makes it).
    """

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer: str | None = None,
        clip_size: tuple[int, int, int] | None = None,
        grid: tuple[int, int, int] | None = None,
        codebook_size: int | None = None,
        num_groups: int = 2,
        num_classes: int = 0,
        class_dropout: float = 0.1,
        label_smoothing: float = 0.1,
        val_mask_ratios: tuple[float, ...] = (0.5, 0.75, 0.9),
        val_unconditional: bool = False,
        condition_frames: int = 0,
        condition_prob: float = 0.5,
        optimizer: OptimizerCallable | None = None,
        warmup_steps: int = 5000,
        decay_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        max_nonfinite_steps: int = 3,
        compile: bool = False,
        mask_weight: float = 1.0,
        refine_weight: float = 0.0,
        recons_weight: float = 0.0,
        loss_normalization: LossNormalization = "token",
        mask_ratio_per: Literal["example", "batch"] = "example",
        input_norm: bool = False,
        head_transform: bool = False,
    ) -> None:
        super().__init__()
        save_init_config(self)
        self.nonfinite_guard = NonFiniteGuard(max_nonfinite_steps)
        self._compiled = False
        dim = getattr(backbone, "dim", None)
        if not isinstance(dim, int):
            raise ValueError(f"backbone {type(backbone).__name__} must expose an integer `dim` attribute")
        self.frozen_tokenizer = FrozenTokenizer(tokenizer) if tokenizer is not None else None
        self.codebook_size, self.grid = self._resolve_tokens(clip_size, grid, codebook_size)
        if num_classes < 0 or not 0.0 <= class_dropout <= 1.0:
            raise ValueError(f"need num_classes >= 0 and class_dropout in [0, 1], got {num_classes}, {class_dropout}")
        if min(mask_weight, refine_weight, recons_weight) < 0 or mask_weight == 0:
            raise ValueError(
                f"loss weights must be >= 0 with mask_weight > 0, got mask {mask_weight}, refine "
                f"{refine_weight}, recons {recons_weight}"
            )
        if loss_normalization not in ("token", "sequence") or mask_ratio_per not in ("example", "batch"):
            raise ValueError(
                f"loss_normalization must be 'token' or 'sequence' and mask_ratio_per 'example' or "
                f"'batch', got {loss_normalization!r}, {mask_ratio_per!r}"
            )
        self.num_tokens = math.prod(self.grid)
        self.condition_latent_frames = self._condition_latent_frames(condition_frames)
        self.num_classes = num_classes
        self.null_class = num_classes  # always has its embedding row
        self.backbone = backbone
        self.tokens = FactorizedTokens(self.codebook_size, dim, num_groups, mask_token=True)
        self.mask_id = self.codebook_size
        self.class_embedding = nn.Embedding(num_classes + 1, dim)
        self.position_embedding = nn.Parameter(torch.randn(1, 1 + self.num_tokens, dim) * 0.02)
        nn.init.normal_(self.class_embedding.weight, std=0.02)
        self.input_norm = nn.LayerNorm(dim) if input_norm else None
        self.head_transform = HeadTransform(dim) if head_transform else None
        self.optimizer_factory = optimizer or _default_adamw
        self.val_bits = nn.ModuleDict({_ratio_key(r): MeanMetric() for r in val_mask_ratios})
        self._labels_checked = False

    def _resolve_tokens(self, clip_size, grid, codebook_size) -> tuple[int, tuple[int, int, int]]:
        tok = self.frozen_tokenizer
        if tok is not None:
            tok.check(codebook_size=codebook_size, grid=grid, clip_size=clip_size, consumer="MaskedLM")
            codebook_size = tok.codebook_size
            if clip_size is not None:
                grid = tok.token_grid(*clip_size)
        if codebook_size is None or grid is None:
            raise ValueError(
                "MaskedLM needs the vocabulary and token grid: give `tokenizer` and `clip_size`, or `codebook_size` "
                f"and `grid` (got tokenizer={self.hparams.tokenizer}, clip_size={clip_size}, grid={grid}, "
                f"codebook_size={codebook_size})"
            )
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f"grid must be (T', H', W') of positive sizes, got {grid}")
        return int(codebook_size), tuple(int(g) for g in grid)

    def _condition_latent_frames(self, frames: int) -> int:
        if frames <= 0:
            return 0
        if self.frozen_tokenizer is None:
            raise ValueError("condition_frames needs a tokenizer (its causal compression gives the latent frames)")
        latent = self.frozen_tokenizer.latent_frames(frames)
        if latent >= self.grid[0]:
            raise ValueError(f"condition_frames {frames} cover {latent} latent frames, all of the grid {self.grid}")
        return latent

    def setup(self, stage: str) -> None:
        """Check the data's vocabulary, grid and tokenizer hash (token shards) against the model's."""
        data = self.trainer.datamodule if self._trainer is not None else None
        for key, mine in (("codebook_size", self.codebook_size), ("grid", self.grid)):
            theirs = getattr(data, key, None)
            if theirs is not None and (tuple(theirs) if key == "grid" else int(theirs)) != mine:
                raise ValueError(f"the data's {key} {theirs} differs from the MaskedLM's {key} {mine}")
        theirs = getattr(data, "tokenizer_hash", None)
        tok = self.frozen_tokenizer
        if theirs is not None and tok is not None and theirs != tok.hash:
            raise ValueError(
                f"the token shards were written by a tokenizer with hash {theirs[:12]}, but the MaskedLM's tokenizer "
                f"{tok.path!r} has hash {tok.hash[:12]}"
            )

    def configure_model(self) -> None:
        """Lightning hook (under the strategy): ``torch.compile`` the backbone in place when ``compile``."""
        compile_modules(self, [self.backbone])

    # -- the network -------------------------------------------------------------------------------

    def hidden(self, inputs: Tensor, labels: Tensor) -> Tensor:
        """``(B, N)`` input ids (``mask_id`` at masked positions) and ``(B,)`` classes → ``(B, N, D)`` features."""
        x = torch.cat([self.class_embedding(labels)[:, None], self.tokens.embed(inputs)], dim=1)
        x = x + self.position_embedding.to(x.dtype)
        return self.backbone(x if self.input_norm is None else self.input_norm(x))[:, 1:]

    def logits(self, hidden: Tensor) -> Tensor:
        """``(..., D)`` features → sub-token logits ``(..., g, S)`` (through the head transform when on)."""
        return self.tokens.logits(hidden if self.head_transform is None else self.head_transform(hidden))

    def forward(self, inputs: Tensor, labels: Tensor) -> Tensor:
        """``(B, N)`` input ids and ``(B,)`` classes → sub-token logits ``(B, N, g, S)``."""
        return self.logits(self.hidden(inputs, labels))

    # -- data --------------------------------------------------------------------------------------

    def batch_tokens(self, batch: dict[str, Any]) -> Tensor:
        """The ``(B, N)`` token ids of a batch: its ``"indices"``, or its ``"video"`` through the tokenizer.

        Raises:
            ValueError: neither key, a video batch without a tokenizer, or a grid other than the model's.
        """
        if "indices" in batch:
            ids = batch["indices"]
        elif "video" in batch:
            if self.frozen_tokenizer is None:
                raise ValueError("a batch of videos needs MaskedLM(tokenizer=...) to tokenize it")
            ids = self.frozen_tokenizer.encode(batch["video"])
        else:
            raise ValueError(f"a MaskedLM batch needs 'indices' or 'video', got keys {sorted(batch)}")
        if tuple(ids.shape[1:]) != self.grid:
            raise ValueError(f"batch token grid {tuple(ids.shape[1:])} differs from the model's grid {self.grid}")
        return ids.long().flatten(1)

    def batch_labels(self, batch: dict[str, Any], n: int) -> Tensor:
        """Class ids ``(B,)``; the null class for unconditional models."""
        if self.num_classes == 0:
            return torch.full((n,), self.null_class, dtype=torch.long, device=self.device)
        if "label" not in batch:
            raise ValueError(f"MaskedLM(num_classes={self.num_classes}) needs a 'label' in every batch")
        labels = torch.as_tensor(batch["label"], device=self.device).long().reshape(n)
        if not self._labels_checked:  # once per run: no device sync per step
            check_class_labels(labels, self.num_classes)
            self._labels_checked = True
        return labels

    # -- training ------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        ids = self.batch_tokens(batch)
        labels = self.batch_labels(batch, ids.shape[0])
        if self.hparams.class_dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < self.hparams.class_dropout
            labels = labels.masked_fill(drop, self.null_class)
        maskable = self._maskable(ids)
        hp = self.hparams
        if hp.get("mask_ratio_per", "example") == "batch":  # one r ~ U(0, 1) for the batch (MAGVIT)
            ratio = max(math.cos(math.pi * float(torch.rand(())) / 2), 1e-6)  # ceil(ratio · M) >= 1 anyway
            masked = cosine_mask(ids, self.mask_id, ratio=ratio, maskable=maskable)
        else:
            masked = cosine_mask(ids, self.mask_id, maskable=maskable)
        logits = self(masked.inputs, labels)
        condition = None if maskable is None else ~maskable
        kinds = (hp.get("mask_weight", 1.0), hp.get("refine_weight", 0.0), hp.get("recons_weight", 0.0))
        weights = position_weights(masked.mask, condition, *kinds)
        normalization = hp.get("loss_normalization", "token")
        if kinds == (1.0, 0.0, 0.0) and normalization == "token":  # the default: the mean over masked positions
            loss = self.tokens.loss(logits, ids, masked.mask, hp.label_smoothing)
        else:
            loss = reduce_loss(self.tokens.cross_entropy(logits, ids, hp.label_smoothing), weights, normalization)
        loss = loss * global_weight_share(weights, normalization)
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/mask_ratio", masked.mask.float().mean())
        return loss

    def _maskable(self, ids: Tensor) -> Tensor | None:
        """Frame prediction: examples drawn with ``condition_prob`` keep their condition frames unmasked."""
        tc = self.condition_latent_frames
        if tc == 0 or self.hparams.condition_prob == 0:
            return None
        conditioned = torch.rand(ids.shape[0], device=ids.device) < self.hparams.condition_prob
        frame = torch.arange(self.grid[0], device=ids.device).repeat_interleave(self.grid[1] * self.grid[2])
        return ~(conditioned[:, None] & (frame < tc)[None])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        ids = self.batch_tokens(batch)
        labels = self.batch_labels(batch, ids.shape[0])
        if self.hparams.val_unconditional:
            labels = torch.full_like(labels, self.null_class)
        generator = torch.Generator(device=ids.device).manual_seed(batch_idx)
        for ratio in self.hparams.val_mask_ratios:
            masked = cosine_mask(ids, self.mask_id, generator=generator, ratio=ratio)
            logits = self(masked.inputs, labels)
            nats = -self.tokens.log_prob(logits, ids)  # (B, N)
            metric = self.val_bits[_ratio_key(ratio)]
            metric.update(nats[masked.mask] / math.log(2))

    def on_validation_epoch_end(self) -> None:
        # MeanMetric.compute() sums over ranks (weighted by token count); sync_dist then averages equal values
        values = {f"val/bits_per_token_{key}": m.compute() for key, m in self.val_bits.items()}
        self.log_dict(values, sync_dist=True)
        self.log("val/bits_per_token", torch.stack(list(values.values())).mean(), prog_bar=True, sync_dist=True)
        for metric in self.val_bits.values():
            metric.reset()

    def no_weight_decay(self) -> set[str]:
        """Parameters without weight decay besides the shared rule's (:mod:`lfq_kit.models._training`)."""
        return {"position_embedding", "tokens.mask_embedding"}

    def configure_optimizers(self) -> Any:
        return step_scheduler(build_optimizer(self.optimizer_factory, self, weight_decay_groups(self)), self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint that lacks the weights of ``input_norm`` / ``head_transform`` (trained without), and
        resume checkpoints written before the shared weight-decay rule (which decayed the 2-D ``tokens.bias``):
        their optimizer state is regrouped, each parameter keeping its moments."""
        state = checkpoint.get("state_dict", {})
        for setting in ("input_norm", "head_transform"):
            if getattr(self, setting) is not None and not any(k.startswith(f"{setting}.") for k in state):
                raise ValueError(
                    f"this checkpoint has no {setting} weights: it was trained with {setting}=False; load it with "
                    f"{setting}=False (the default) or train a model with {setting}=True"
                )
        names = {id(p): n for n, p in self.named_parameters()}
        new = [[names[id(p)] for p in g["params"]] for g in weight_decay_groups(self)]
        trained = [(n, p) for n, p in self.named_parameters() if p.requires_grad]  # the old groups' order
        legacy = [[n for n, p in trained if self._legacy_decay(n, p)]]
        legacy.append([n for n, p in trained if not self._legacy_decay(n, p)])
        states = checkpoint.get("optimizer_states", [])
        saved = [len(g["params"]) for g in states[0]["param_groups"]] if len(states) == 1 else None
        if legacy != new and saved == [len(g) for g in legacy]:
            states[0] = regroup_optimizer_state(states[0], legacy, new)
        super().on_load_checkpoint(checkpoint)

    @staticmethod
    def _legacy_decay(name: str, param: nn.Parameter) -> bool:
        return param.ndim >= 2 and "embedding" not in name and "tables" not in name
