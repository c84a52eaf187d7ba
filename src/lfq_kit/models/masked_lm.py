"""The masked language model over tokenizer tokens (MaskGIT / MAGVIT; MAGVIT-v2, arXiv 2310.05737, Sec. 3.1 token
factorization and Sec. 4 generation; reference Sec. 4).

A bidirectional transformer reads ``[class token | latent tokens]`` with learned position embeddings and predicts
every masked token; ids are embedded and predicted through the factorized tables and tied heads of
:class:`lfq_kit.nn.FactorizedTokens`. Training masks a cosine-scheduled number of random positions per example
and scores masked positions only; the class token is replaced by the null ("unconditional") class with
probability ``class_dropout``, which classifier-free guidance needs. :meth:`MaskedLM.generate` samples with
MaskGIT's iterative decoding (:mod:`lfq_kit.models.maskgit`), class-conditionally and/or from condition frames.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric

from ..distributed import all_reduce_sum, is_distributed, world_size
from ..nn.factorized_tokens import FactorizedTokens
from ._checks import check_class_labels
from ._hparams import save_init_config
from ._maskgit import cosine_mask, maskgit_decode
from ._nonfinite import NonFiniteGuard, SkipNonFiniteSteps
from ._step_seed import StepSeeded
from ._token_consumer import TokenConsumer
from ._training import build_optimizer, compile_modules, regroup_optimizer_state, step_scheduler, weight_decay_groups
from .frozen_tokenizer import FrozenTokenizer

__all__ = ["MaskedLM"]


def _default_adamw(params) -> torch.optim.Optimizer:
    """Reference Sec. 4: AdamW, lr 1e-4, β = (0.9, 0.96), weight decay 0.045."""
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.96), weight_decay=0.045)


def _ratio_key(ratio: float) -> str:
    return f"{ratio:g}".replace(".", "_")


def _global_token_share(mask: Tensor) -> Tensor:
    """``world · n_rank / n_global`` for ``mask``'s count of masked positions (1 on one process).

    The masked count differs per sample, so DDP's average of the ranks' mean losses is not the mean over every
    masked position of the global batch; scaling each rank's mean by this factor makes it so (one all-reduce
    of a count, no host sync).
    """
    if not is_distributed():
        return torch.ones((), device=mask.device)
    local = mask.sum().float()
    return world_size() * local / all_reduce_sum(local.clone()).clamp_min(1.0)


class MaskedLM(StepSeeded, SkipNonFiniteSteps, TokenConsumer, L.LightningModule):
    """Masked-token transformer over a tokenizer's ``(T', H', W')`` token grid.

    Batches are dicts with ``"indices"`` ``(B, T', H', W')`` int (token shards, :class:`lfq_kit.data.TokenDataModule`)
    or ``"video"`` ``(B, 3, T, H, W)`` float in ``[−1, 1]`` (tokenized on the fly by the frozen ``tokenizer``), and
    ``"label"`` ``(B,)`` int64 class ids in ``[0, num_classes)`` when ``num_classes > 0``.

    Training loss: mean over masked positions of the summed sub-token cross-entropies (nats), label-smoothed.
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
            :class:`~lfq_kit.models.nonfinite.NonFiniteLossError`.
        compile: ``torch.compile`` the backbone in ``configure_model`` (embeddings, heads and decoding stay eager).

    Training re-seeds torch's global generator at every batch (:class:`~lfq_kit.models.step_seed.StepSeeded`):
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
        return self.backbone(x + self.position_embedding.to(x.dtype))[:, 1:]

    def forward(self, inputs: Tensor, labels: Tensor) -> Tensor:
        """``(B, N)`` input ids and ``(B,)`` classes → sub-token logits ``(B, N, g, S)``."""
        return self.tokens.logits(self.hidden(inputs, labels))

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
        masked = cosine_mask(ids, self.mask_id, maskable=self._maskable(ids))
        logits = self(masked.inputs, labels)
        loss = self.tokens.loss(logits, ids, masked.mask, self.hparams.label_smoothing)
        loss = loss * _global_token_share(masked.mask)
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
        """Resume checkpoints written before the shared weight-decay rule (which decayed the 2-D ``tokens.bias``):
        their optimizer state is regrouped, each parameter keeping its moments."""
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

    # -- generation ----------------------------------------------------------------------------------

    def guided_logits(self, inputs: Tensor, labels: Tensor, positions: Tensor, guidance_scale: float = 0.0) -> Tensor:
        """Sub-token logits ``(B, M, g, S)`` float32 at ``positions`` ``(B, M)`` of ``inputs`` ``(B, N)``.

        Classifier-free guidance: ``l_c + s · (l_c − l_u)`` with ``l_u`` the logits under the null class; at
        ``s = 0`` exactly the conditional logits (the unconditional pass is skipped).
        """
        if guidance_scale != 0:
            null = torch.full_like(labels, self.null_class)
            inputs, labels, positions = torch.cat([inputs, inputs]), torch.cat([labels, null]), torch.cat([positions, positions])
        hidden = self.hidden(inputs, labels)
        selected = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
        logits = self.tokens.logits(selected).float()
        if guidance_scale == 0:
            return logits
        cond, uncond = logits.chunk(2)
        return cond + guidance_scale * (cond - uncond)

    @torch.no_grad()
    def generate(
        self,
        labels: Tensor | None,
        steps: int = 12,
        choice_temperature: float = 4.5,
        guidance_scale: float = 0.0,
        temperature: float = 1.0,
        top_k: int | None = None,
        condition: Tensor | None = None,
        generator: torch.Generator | None = None,
        num_samples: int | None = None,
    ) -> Tensor:
        """Sample token grids with MaskGIT decoding: → ``(B, T', H', W')`` int64 ids in ``[0, codebook_size)``.

        Args:
            labels: ``(B,)`` int64 classes in ``[0, num_classes)``, or None for unconditional samples (the null
                class; then give ``num_samples`` or ``condition``).
            steps: decoding steps (12; the paper used 64 for ImageNet); at most the number of unknown tokens.
            choice_temperature: Gumbel scale of the keep/re-mask choice, annealed to 0 (4.5).
            guidance_scale: classifier-free guidance ``s``: logits ``l_c + s · (l_c − l_u)``; 0 uses the
                conditional logits exactly (no unconditional pass).
            temperature: sampling temperature; 0 is argmax.
            top_k: sample among the ``top_k`` most likely sub-tokens of each group; 1 is argmax.
            condition: ``(B, T'c, H', W')`` ids of the first latent frames, kept fixed (frame prediction).
            generator: makes sampling deterministic (on the model's device).
            num_samples: batch size when neither ``labels`` nor ``condition`` gives it.

        Raises:
            ValueError: labels out of range, a condition of another grid, ``steps`` above the unknown token count.
        """
        was_training = self.training
        self.eval()
        try:
            return self._generate(labels, steps, choice_temperature, guidance_scale, temperature, top_k, condition,
                                  generator, num_samples)  # fmt: skip
        finally:
            self.train(was_training)

    def _generate(self, labels, steps, choice_temperature, guidance_scale, temperature, top_k, condition, generator,
                  num_samples) -> Tensor:  # fmt: skip
        t, h, w = self.grid
        given = [v.shape[0] for v in (labels, condition) if v is not None]
        b = given[0] if given else num_samples
        if b is None or b < 1:
            raise ValueError("generate needs labels, a condition or num_samples to know the batch size")
        if labels is None:
            labels = torch.full((b,), self.null_class, dtype=torch.long, device=self.device)
        else:
            labels = labels.to(self.device).long()
            if labels.numel() and (labels.min() < 0 or labels.max() >= max(self.num_classes, 1)):
                raise ValueError(f"labels must lie in [0, {self.num_classes}), got {labels.tolist()}")
            if self.num_classes == 0:
                labels = torch.full_like(labels, self.null_class)
        ids = torch.zeros(b, t, h, w, dtype=torch.long, device=self.device)
        unknown = torch.ones_like(ids, dtype=torch.bool)
        if condition is not None:
            tc = condition.shape[1]
            if condition.ndim != 4 or condition.shape[0] != b or tuple(condition.shape[2:]) != (h, w) or tc > t:
                raise ValueError(f"condition must be (B={b}, T'c <= {t}, {h}, {w}) ids, got {tuple(condition.shape)}")
            ids[:, :tc] = condition.to(self.device).long()
            unknown[:, :tc] = False
        def step_fn(current: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
            logits = self.guided_logits(current, labels, positions, guidance_scale)
            return self.tokens.sample(logits, temperature, top_k, generator)

        out = maskgit_decode(ids.flatten(1), unknown.flatten(1), step_fn, self.mask_id, steps, choice_temperature, generator)
        return out.view(b, t, h, w)
