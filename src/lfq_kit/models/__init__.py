"""LightningModules: one per task (tokenizer; masked LM and action recognition arrive later)."""

from .schedules import WarmupCosine
from .tokenizer import TokenizerGenerator, VideoTokenizer, check_video

__all__ = ["TokenizerGenerator", "VideoTokenizer", "WarmupCosine", "check_video"]
