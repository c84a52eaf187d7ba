"""Log masked-LM samples (decoded by its frozen tokenizer) to TensorBoard during training."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["GenerationLogger", "video_grid"]


def video_grid(videos: torch.Tensor, max_frames: int = 8) -> torch.Tensor:
    """``(N, 3, T, H, W)`` in ``[−1, 1]`` → one ``(3, N·H, T'·W)`` float image in ``[0, 1]``: a row per video, up
    to ``max_frames`` evenly spaced frames per row."""
    t = videos.shape[2]
    keep = torch.linspace(0, t - 1, min(t, max_frames)).round().long().to(videos.device)
    rows = videos.index_select(2, keep).permute(1, 0, 3, 2, 4)  # (3, N, H, T', W)
    c, n, h, k, w = rows.shape
    return ((rows.reshape(c, n * h, k * w).float() + 1) / 2).clamp(0, 1)


class GenerationLogger(Callback):
    """Every ``every_n_epochs`` validation epochs, generate one sample per class of ``classes`` (or
    ``num_samples`` unconditional ones) with a fixed seed, decode them with the model's frozen tokenizer and log a
    frame grid (``add_image``) and, with ``log_video``, the videos (``add_video``, needs moviepy).

    Works with TensorBoard; other loggers, or a model without a tokenizer, get nothing, with one warning.

    Args:
        classes: class ids to sample (None: ``num_samples`` unconditional samples).
        num_samples: unconditional samples when ``classes`` is None.
        steps: MaskGIT decoding steps.
        every_n_epochs: log every this many validation epochs.
        max_frames: frames per sample in the grid.
        log_video: also log videos.
        seed: seed of the sampling generator (the same samples' evolution is shown over training).
    """

    def __init__(
        self,
        classes: list[int] | None = None,
        num_samples: int = 2,
        steps: int = 12,
        every_n_epochs: int = 1,
        max_frames: int = 8,
        log_video: bool = False,
        seed: int = 0,
    ) -> None:
        self.classes = classes
        self.num_samples = num_samples
        self.steps = steps
        self.every_n_epochs = every_n_epochs
        self.max_frames = max_frames
        self.log_video = log_video
        self.seed = seed
        self._warned = False

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            rank_zero_warn(message)
            self._warned = True

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs or not trainer.is_global_zero:
            return
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        tokenizer = getattr(pl_module, "frozen_tokenizer", None)
        if logger is None or tokenizer is None:
            self._warn_once("GenerationLogger needs a TensorBoardLogger and a model with a tokenizer; logging nothing")
            return
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        labels = None if self.classes is None else torch.tensor(self.classes, device=pl_module.device)
        ids = pl_module.generate(labels, steps=self.steps, generator=generator, num_samples=self.num_samples)
        videos = tokenizer.decode(ids)
        step = pl_module.global_step
        logger.experiment.add_image("samples/generated", video_grid(videos, self.max_frames), step)
        if self.log_video:
            clip = ((videos.transpose(1, 2).float() + 1) / 2).clamp(0, 1).cpu()  # (N, T, C, H, W)
            try:
                logger.experiment.add_video("samples/generated_video", clip, step, fps=8)
            except ImportError as err:  # moviepy missing
                rank_zero_warn(f"GenerationLogger: cannot encode videos ({err}); logging grids only")
                self.log_video = False
