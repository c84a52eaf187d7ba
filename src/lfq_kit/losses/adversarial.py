"""GAN losses of the MAGVIT-v2 tokenizer: non-saturating losses, R1 penalty and LeCAM regularization.

MAGVIT-v2 appendix and google-research/magvit (``videogvt`` trainer): non-saturating GAN loss, R1 gradient
penalty with cost 10 (applied lazily every n steps), LeCAM with EMAs of the mean logits (decay 0.999).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import all_reduce_mean

__all__ = ["LeCAM", "discriminator_loss", "generator_loss", "r1_penalty"]


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``E[softplus(−D(G(z)))] = −E[log σ(D(G(z)))]`` (nats, 0-dim)."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating discriminator loss ``E[softplus(−D(x))] + E[softplus(D(G(z)))]`` (nats, 0-dim)."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def r1_penalty(real_logits: Tensor, real_inputs: Tensor) -> Tensor:
    """R1 gradient penalty ``E_x[‖∇_x D(x)‖²]`` (Mescheder et al., arXiv 1801.04406, Eq. 9, without the ½).

    ``real_inputs`` must require grad and ``real_logits`` be computed from it; the penalty is
    differentiable (create_graph) so its gradient reaches the discriminator. Returns a 0-dim float32 tensor.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_inputs, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


class LeCAM(nn.Module):
    """LeCAM regularizer (Tseng et al., arXiv 2104.03310, Eq. 3) with EMAs of the mean logits.

    ``mean(relu(D(real) − ema_fake)²) + mean(relu(ema_real − D(fake))²)``. The EMAs are persistent
    buffers, so they are saved in checkpoints and a resumed run continues them exactly (a known
    replication hazard is resetting them on resume).

    Args:
        decay: EMA decay of the mean real / fake logits (0.999 in the reference).
    """

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCAM decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    @torch.no_grad()
    def update(self, real_logits: Tensor, fake_logits: Tensor) -> None:
        """Fold this step's mean logits into the EMAs (call once per discriminator step). Under
        torch.distributed the means are those of the global batch (one all-reduce of two numbers; ranks with
        equal batch sizes, as DDP has), so every rank keeps the EMAs one process with the whole batch would."""
        means = torch.stack([real_logits.float().mean(), fake_logits.float().mean()])
        all_reduce_mean(means)
        self.ema_real.lerp_(means[0], 1.0 - self.decay)
        self.ema_fake.lerp_(means[1], 1.0 - self.decay)

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = real_logits.float(), fake_logits.float()
        return F.relu(real - self.ema_fake).pow(2).mean() + F.relu(self.ema_real - fake).pow(2).mean()
