"""Encoders, decoders and discriminators, registered in :data:`lfq_kit.registry.BACKBONES`."""

from .base import Decoder, Discriminator, Encoder, clip_length_rule
from .conv_autoencoder import ConvDecoder, ConvEncoder
from .image2d import Image2dDecoder, Image2dEncoder
from .magvit1 import Magvit1Decoder, Magvit1Encoder
from .magvit2 import Magvit2Decoder, Magvit2Encoder
from .stylegan_discriminator import ResBlockDown, StyleGANDiscriminator2d, StyleGANDiscriminator3d

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "Decoder",
    "Discriminator",
    "Encoder",
    "Image2dDecoder",
    "Image2dEncoder",
    "Magvit1Decoder",
    "Magvit1Encoder",
    "Magvit2Decoder",
    "Magvit2Encoder",
    "ResBlockDown",
    "StyleGANDiscriminator2d",
    "StyleGANDiscriminator3d",
    "clip_length_rule",
]
