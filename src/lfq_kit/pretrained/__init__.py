"""Converters from public checkpoints into lfq-kit checkpoints (``lfq-kit convert``; docs/pretrained.md).

- :func:`lfq_kit.pretrained.open_magvit2.convert_open_magvit2`: Open-MAGVIT2 / SEED-Voken LFQ tokenizers →
  a :class:`~lfq_kit.models.VideoTokenizer` checkpoint.
- :func:`lfq_kit.pretrained.videomae.convert_videomae`: VideoMAE (MCG-NJU ``.pth`` or a transformers folder) →
  a checkpoint that :class:`~lfq_kit.models.VideoClassifier` (``pretrained:``) and
  :class:`~lfq_kit.models.VideoMAEPretraining` load.

Third-party files are read without executing code from them (:mod:`lfq_kit.pretrained.checkpoint_files`).
"""

from .checkpoint_files import ConversionResult, LayoutError, read_checkpoint_file, save_module_checkpoint

__all__ = ["ConversionResult", "LayoutError", "read_checkpoint_file", "save_module_checkpoint"]
