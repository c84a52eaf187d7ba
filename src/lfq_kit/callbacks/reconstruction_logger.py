"""Log input / reconstruction frame grids (and videos where the logger supports them) during validation."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["ReconstructionLogger", "frame_grid"]


def frame_grid(video: torch.Tensor, recon: torch.Tensor, max_videos: int = 4, max_frames: int = 8) -> torch.Tensor:
    """``(B, 3, T, H, W)`` pairs in ``[−1, 1]`` → one ``(3, rows·H, T'·W)`` float image in ``[0, 1]``.

    Rows alternate input and reconstruction for each of the first ``max_videos`` videos; columns are up to
    ``max_frames`` evenly spaced frames.
    """
    b, t = min(video.shape[0], max_videos), video.shape[2]
    keep = torch.linspace(0, t - 1, min(t, max_frames)).round().long().to(video.device)
    pairs = torch.stack([video[:b], recon[:b]], dim=1).index_select(3, keep)  # (b, 2, 3, t', H, W)
    rows = pairs.flatten(0, 1).permute(1, 0, 3, 2, 4)  # (3, rows, H, t', W)
    c, r, h, n, w = rows.shape
    return ((rows.reshape(c, r * h, n * w).float() + 1) / 2).clamp(0, 1)


class ReconstructionLogger(Callback):
    """Every ``every_n_epochs`` validation epochs, log the first validation batch's frames and their
    reconstruction (EMA generator) as an image grid, and as videos when the logger can encode them.

    Works with TensorBoard (``add_image`` / ``add_video``); other loggers get nothing, with one warning.

    Args:
        max_videos: videos (grid rows pairs) to show.
        max_frames: frames per video in the grid.
        every_n_epochs: log every this many validation epochs.
        log_video: also log videos through ``add_video`` (needs moviepy for TensorBoard).
    """

    def __init__(
        self, max_videos: int = 4, max_frames: int = 8, every_n_epochs: int = 1, log_video: bool = False
    ) -> None:
        self.max_videos = max_videos
        self.max_frames = max_frames
        self.every_n_epochs = every_n_epochs
        self.log_video = log_video
        self._warned = False

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx != 0 or trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        if not trainer.is_global_zero:
            return
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if logger is None:
            if not self._warned:
                rank_zero_warn("ReconstructionLogger logs to TensorBoard only; no TensorBoardLogger is configured")
                self._warned = True
            return
        video = batch["video"][: self.max_videos]
        recon = pl_module.decode(pl_module.encode(video))
        step = pl_module.global_step
        logger.experiment.add_image(
            "val/reconstruction", frame_grid(video, recon, self.max_videos, self.max_frames), step
        )
        if self.log_video:
            pair = torch.cat([video, recon], dim=-1)  # side by side
            clip = ((pair.transpose(1, 2).float() + 1) / 2).clamp(0, 1).cpu()  # (N, T, C, H, W) as add_video wants
            try:
                logger.experiment.add_video("val/reconstruction_video", clip, step, fps=8)
            except ImportError as err:  # moviepy missing
                rank_zero_warn(f"ReconstructionLogger: cannot encode videos ({err}); logging grids only")
                self.log_video = False
