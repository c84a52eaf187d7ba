"""Encoders, decoders, discriminators and transformers, registered in :data:`lfq_kit.registry.BACKBONES`."""

from .base import Decoder, Discriminator, Encoder, clip_length_rule
from .conv_autoencoder import ConvDecoder, ConvEncoder
from .image2d import Image2dDecoder, Image2dEncoder
from .magvit1 import Magvit1Decoder, Magvit1Encoder
from .magvit2 import Magvit2Decoder, Magvit2Encoder
from .stylegan_discriminator import ResBlockDown, StyleGANDiscriminator2d, StyleGANDiscriminator3d
from .transformer import BidirectionalTransformer, TransformerB, TransformerL, TransformerS, TransformerTiny
from .tubelet_embedding import TubeletEmbedding, tubelet_grid
from .video_vit import VideoViT, VideoViTB, VideoViTL, VideoViTS, VideoViTTiny

__all__ = [
    "BidirectionalTransformer",
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
    "TransformerB",
    "TransformerL",
    "TransformerS",
    "TransformerTiny",
    "TubeletEmbedding",
    "VideoViT",
    "VideoViTB",
    "VideoViTL",
    "VideoViTS",
    "VideoViTTiny",
    "clip_length_rule",
    "tubelet_grid",
]
