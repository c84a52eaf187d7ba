"""MaskGIT sampling for :class:`lfq_kit.models.MaskedLM` (Chang et al., arXiv 2202.04200; MAGVIT-v2, arXiv
2310.05737, Sec. 4): classifier-free guided logits at chosen positions and :meth:`MaskGITSampling.generate`, which
runs :func:`lfq_kit.models._maskgit.maskgit_decode` class-conditionally and/or from condition frames."""

from __future__ import annotations

import torch
from torch import Tensor

from ._maskgit import maskgit_decode

__all__ = ["MaskGITSampling"]


class MaskGITSampling:
    """Mixin of :class:`~lfq_kit.models.MaskedLM`: needs its ``hidden``, ``logits``, ``tokens``, ``grid``,
    ``mask_id``, ``null_class``, ``num_classes`` and ``device``."""

    def guided_logits(self, inputs: Tensor, labels: Tensor, positions: Tensor, guidance_scale: float = 0.0) -> Tensor:
        """Sub-token logits ``(B, M, g, S)`` float32 at ``positions`` ``(B, M)`` of ``inputs`` ``(B, N)``.

        Classifier-free guidance: ``l_c + s · (l_c − l_u)`` with ``l_u`` the logits under the null class; at
        ``s = 0`` exactly the conditional logits (the unconditional pass is skipped).
        """
        if guidance_scale != 0:
            null = torch.full_like(labels, self.null_class)
            inputs, labels, positions = (
                torch.cat([inputs, inputs]),
                torch.cat([labels, null]),
                torch.cat([positions, positions]),
            )
        hidden = self.hidden(inputs, labels)
        selected = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
        logits = self.logits(selected).float()
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
            return self._generate(
                labels, steps, choice_temperature, guidance_scale, temperature, top_k, condition, generator, num_samples
            )
        finally:
            self.train(was_training)

    def _generate(
        self, labels, steps, choice_temperature, guidance_scale, temperature, top_k, condition, generator, num_samples
    ) -> Tensor:
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

        out = maskgit_decode(
            ids.flatten(1), unknown.flatten(1), step_fn, self.mask_id, steps, choice_temperature, generator
        )
        return out.view(b, t, h, w)
