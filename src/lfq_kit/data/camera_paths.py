"""Synthetic camera motion over real frames: a square crop window that pans or zooms at a constant rate, rendered
with one ``grid_sample`` per clip (all frames at once).

Motions (label order of :data:`CAMERA_MOTIONS`): ``static``; ``pan_left`` / ``pan_right`` / ``pan_up`` /
``pan_down`` (the window moves that way, so the scene drifts the other way); ``zoom_in`` / ``zoom_out`` (the
window shrinks / grows about its centre by a constant factor per frame). Rates are per 16 frames, in units of the
frame's short side ``S``: a pan moves ``pan · S``, a zoom scales the window by ``zoom`` (or ``1 / zoom``). A path is
placed inside the frame by ``(ax, ay)`` in ``[0, 1]²``: where its bounding box sits within the free space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["CAMERA_MOTIONS", "camera_path", "render_path"]

CAMERA_MOTIONS: tuple[str, ...] = ("static", "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out")
_PAN = {"pan_left": (-1, 0), "pan_right": (1, 0), "pan_up": (0, -1), "pan_down": (0, 1)}


def camera_path(
    motion: int,
    frames: int,
    height: int,
    width: int,
    window: float = 0.5,
    pan: float = 0.25,
    zoom: float = 0.75,
    ax: float = 0.5,
    ay: float = 0.5,
) -> Tensor:
    """Window centres and sides ``(frames, 3)`` float64 ``(cx, cy, side)`` in source pixels.

    Args:
        motion: index into :data:`CAMERA_MOTIONS`.
        frames: path length.
        height, width: source frame size; ``S = min(height, width)``.
        window: starting window side as a fraction of ``S`` (``zoom_out`` ends at it, so both zooms span the same
            sizes).
        pan, zoom: rates per 16 frames (see the module docstring).
        ax, ay: placement of the path's bounding box within the free space (0: left/top, 1: right/bottom).

    Raises:
        ValueError: an unknown motion, or a path that does not fit in the frame (the message gives its extent).
    """
    if not 0 <= motion < len(CAMERA_MOTIONS):
        raise ValueError(f"motion must be in [0, {len(CAMERA_MOTIONS)}), got {motion}")
    name, short = CAMERA_MOTIONS[motion], min(height, width)
    k = torch.arange(frames, dtype=torch.float64)
    side = torch.full((frames,), window * short, dtype=torch.float64)
    cx, cy = torch.zeros(frames, dtype=torch.float64), torch.zeros(frames, dtype=torch.float64)
    if name in _PAN:
        dx, dy = _PAN[name]
        step = pan * short / 16
        cx, cy = dx * step * k, dy * step * k
    elif name == "zoom_in":
        side = side * zoom ** (k / 16)
    elif name == "zoom_out":
        side = side * zoom ** ((frames - 1 - k) / 16)  # grows back to `window`
    lo_x, hi_x = float((cx - side / 2).min()), float((cx + side / 2).max())
    lo_y, hi_y = float((cy - side / 2).min()), float((cy + side / 2).max())
    slack_x, slack_y = width - (hi_x - lo_x), height - (hi_y - lo_y)
    if slack_x < 0 or slack_y < 0:
        raise ValueError(
            f"a {frames}-frame {name} path spans {hi_x - lo_x:.0f} x {hi_y - lo_y:.0f} pixels, more than "
            f"the {width} x {height} frame; lower window, pan or zoom"
        )
    cx = cx - lo_x + ax * slack_x
    cy = cy - lo_y + ay * slack_y
    return torch.stack([cx, cy, side], dim=1)


def render_path(frames: Tensor, path: Tensor, resolution: int) -> Tensor:
    """Crop-and-resize every frame along ``path``: uint8 ``(T, H, W, 3)`` and ``(T, 3)`` → float32
    ``(3, T, resolution, resolution)`` in ``[−1, 1]`` (bilinear)."""
    t, h, w = frames.shape[:3]
    x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    cx, cy, side = path[:, 0], path[:, 1], path[:, 2]
    theta = torch.zeros(t, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 1, 1] = side / w, side / h
    theta[:, 0, 2], theta[:, 1, 2] = 2 * cx / w - 1, 2 * cy / h - 1
    grid = F.affine_grid(theta.float(), [t, 3, resolution, resolution], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(-1.0, 1.0).permute(1, 0, 2, 3).contiguous()
