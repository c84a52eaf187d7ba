"""LightningModules, one per task (tokenizer, masked LM, VideoMAE pretraining, video classifier), and the frozen tokenizer that token consumers load."""

from .clip_tokens import TokenizeClips
from .frozen_tokenizer import FrozenTokenizer, tokenizer_hash
from .masked_lm import MaskedLM
from .schedules import WarmupCosine
from .token_consumer import TokenConsumer
from .tokenizer import TokenizerGenerator, VideoTokenizer, check_video
from .video_classifier import VideoClassifier
from .videomae import VideoMAEPretraining

__all__ = [
    "FrozenTokenizer",
    "MaskedLM",
    "TokenConsumer",
    "TokenizeClips",
    "TokenizerGenerator",
    "VideoClassifier",
    "VideoMAEPretraining",
    "VideoTokenizer",
    "WarmupCosine",
    "check_video",
    "tokenizer_hash",
]
