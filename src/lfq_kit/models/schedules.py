"""Learning-rate schedules shared by the training modules."""

from __future__ import annotations

import math

__all__ = ["WarmupCosine"]


class WarmupCosine:
    """Multiplier for ``LambdaLR``: linear warm-up from 0 over ``warmup_steps``, then cosine decay to
    ``min_ratio`` over ``decay_steps`` (constant 1 after warm-up when ``decay_steps`` is None or 0).

    A callable object, not a lambda, so ``LambdaLR.state_dict()`` keeps it and resumes exactly.
    """

    def __init__(self, warmup_steps: int = 0, decay_steps: int | None = None, min_ratio: float = 0.0) -> None:
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if not self.decay_steps:
            return 1.0
        progress = min((step - self.warmup_steps) / max(self.decay_steps - self.warmup_steps, 1), 1.0)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
