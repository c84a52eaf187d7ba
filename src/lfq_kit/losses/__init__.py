"""Losses shared by the training modules: perceptual and adversarial."""

from .adversarial import LeCAM, discriminator_loss, generator_loss, r1_penalty
from .perceptual import LogitsPerceptualLoss, LPIPSLoss, frames

__all__ = ["LPIPSLoss", "LeCAM", "LogitsPerceptualLoss", "discriminator_loss", "frames", "generator_loss", "r1_penalty"]
