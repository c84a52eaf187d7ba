"""LightningModules, one per task (tokenizer, masked LM, VideoMAE pretraining, video classifier), and the frozen
tokenizer that token consumers load. Modules starting with ``_`` are the training layer the four share (not public
API): ``_training`` (optimizer, weight decay, warm-up + cosine, effective batch, compile), ``_manual_steps``
(accumulation under manual optimization), ``_token_consumer`` (tokenizer hash in checkpoints), ``_hparams``."""

from ._training import WarmupCosine
from .frozen_tokenizer import FrozenTokenizer, tokenizer_hash
from .masked_lm import MaskedLM
from .tokenizer import TokenizerGenerator, VideoTokenizer, check_video
from .video_classifier import VideoClassifier
from .videomae import VideoMAEPretraining

__all__ = [
    "FrozenTokenizer",
    "MaskedLM",
    "TokenizerGenerator",
    "VideoClassifier",
    "VideoMAEPretraining",
    "VideoTokenizer",
    "WarmupCosine",
    "check_video",
    "tokenizer_hash",
]
