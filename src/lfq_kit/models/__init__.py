"""LightningModules, one per task (tokenizer, masked LM, VideoMAE pretraining, video classifier), and the frozen
tokenizer that token consumers load (with ``TokenizeClips``, which writes a data set's tokens once). Modules
starting with ``_`` are the training layer the four share and their task helpers (not public API; the names users
need are re-exported here):

- shared by all four: ``_training`` (optimizer, weight decay, warm-up + cosine, effective batch, compile),
  ``_step_seed`` (per-step seeding), ``_nonfinite`` (skipping NaN/inf steps), ``_hparams`` (init config);
- the tokenizer's: ``_manual_steps`` (accumulation under manual optimization), ``_generator`` (encoder, quantizer,
  decoder), ``_checks`` (pixels, indices, encoder/decoder pairing; also used for class labels);
- the token consumers': ``_token_consumer`` (tokenizer hash in checkpoints), ``_maskgit`` (masking schedule and
  decoding), ``_mlm_recipe`` (the masked LM's loss recipe), ``_mlm_sampling`` (its generation);
- VideoMAE's: ``_tube_masking``, ``_pixel_targets``, ``_pretrained``, ``_layer_decay``, ``_video_mixup``.

See docs/layout.md for the whole tree."""

from ._nonfinite import NonFiniteLossError
from ._training import WarmupCosine
from .frozen_tokenizer import FrozenTokenizer, TokenizeClips, tokenizer_hash
from .masked_lm import MaskedLM
from .tokenizer import TokenizerGenerator, VideoTokenizer, check_video
from .video_classifier import VideoClassifier
from .videomae import VideoMAEPretraining

__all__ = [
    "FrozenTokenizer",
    "MaskedLM",
    "NonFiniteLossError",
    "TokenizeClips",
    "TokenizerGenerator",
    "VideoClassifier",
    "VideoMAEPretraining",
    "VideoTokenizer",
    "WarmupCosine",
    "check_video",
    "tokenizer_hash",
]
