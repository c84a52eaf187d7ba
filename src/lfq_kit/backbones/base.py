"""What every tokenizer encoder and decoder promises: channels, compression factors and clip-length rules.

Encoders map pixels ``(B, in_channels, T, H, W)`` to latents ``(B, out_channels, T', H', W')``; decoders map
latents ``(B, in_channels, T', H', W')`` back to pixels ``(B, out_channels, T, H, W)``. ``H' = H / s`` with
``s = spatial_compression``. In time (``r = temporal_compression``):

* causal models (MAGVIT-v2, arXiv 2310.05737 Sec. 3.2): ``T = 1 + r·k → T' = 1 + k`` and back, so
  ``T = 1`` (an image) works and the first frame is encoded alone;
* non-causal models (MAGVIT v1): ``T = r·k → T' = k`` and back.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Decoder", "Discriminator", "Encoder", "clip_length_rule"]


def clip_length_rule(temporal_compression: int, causal: bool) -> str:
    """Human-readable valid clip lengths: ``"T = 1 + 4k (1, 5, 9, 13, 17, ...)"``."""
    r = temporal_compression
    if r == 1:
        return "T ≥ 1"
    if causal:
        return f"T = 1 + {r}k ({', '.join(str(1 + r * k) for k in range(5))}, ...)"
    return f"T divisible by {r} ({', '.join(str(r * k) for k in range(1, 5))}, ...)"


class _Shapes(nn.Module):
    """Channel counts and compression factors shared by encoders and decoders."""

    def __init__(
        self, in_channels: int, out_channels: int, temporal_compression: int, spatial_compression: int, causal: bool
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.causal = causal
        self._temporal_compression = temporal_compression
        self._spatial_compression = spatial_compression

    @property
    def temporal_compression(self) -> int:
        """Frames per latent frame ``r`` (1 for image models)."""
        return self._temporal_compression

    @property
    def spatial_compression(self) -> int:
        """Pixels per latent position along H and along W."""
        return self._spatial_compression

    def _check_rank_and_channels(self, x: Tensor, allow_images: bool) -> None:
        ranks = "(B, C, T, H, W) or (B, C, H, W)" if allow_images else "(B, C, T, H, W)"
        if x.ndim not in ((4, 5) if allow_images else (5,)) or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects {ranks} with C = {self.in_channels}, got shape {tuple(x.shape)}"
            )


class Encoder(_Shapes):
    """Base of every encoder: pixels ``(B, in_channels, T, H, W)`` → latents ``(B, out_channels, T', H', W')``.

    Subclasses call :meth:`check_input` at the top of ``forward``. Attributes: ``in_channels`` (pixel
    channels), ``out_channels`` (latent dim), ``causal``; properties ``temporal_compression`` and
    ``spatial_compression``.
    """

    accepts_images = False  # image models also take (B, C, H, W)

    def latent_shape(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """The latent grid ``(T', H', W')`` of a ``(T, H, W)`` clip.

        Raises:
            ValueError: a clip length outside the rule (the message lists valid lengths), or ``H``/``W`` not
                divisible by ``spatial_compression``.
        """
        r, s = self.temporal_compression, self.spatial_compression
        ok_t = t >= 1 and ((t - 1) % r == 0 if self.causal else t % r == 0)
        if not ok_t:
            raise ValueError(f"{type(self).__name__} needs {clip_length_rule(r, self.causal)} frames, got T = {t}")
        if h < 1 or w < 1 or h % s or w % s:
            raise ValueError(f"{type(self).__name__} needs H and W divisible by {s}, got H × W = {h} × {w}")
        return ((t - 1) // r + 1 if self.causal else t // r), h // s, w // s

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, in_channels, T, H, W)`` with a valid ``(T, H, W)``."""
        self._check_rank_and_channels(x, self.accepts_images)
        self.latent_shape(*(x.shape[2:] if x.ndim == 5 else (1, *x.shape[2:])))


class Decoder(_Shapes):
    """Base of every decoder: latents ``(B, in_channels, T', H', W')`` → pixels ``(B, out_channels, T, H, W)``.

    ``in_channels`` is the latent dim. Any ``T' ≥ 1`` and latent size are valid.
    """

    accepts_images = False

    def output_shape(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """The pixel grid ``(T, H, W)`` decoded from a ``(T', H', W')`` latent grid.

        Raises:
            ValueError: a size below 1.
        """
        if min(t, h, w) < 1:
            raise ValueError(f"{type(self).__name__} needs a non-empty latent grid, got {(t, h, w)}")
        r, s = self.temporal_compression, self.spatial_compression
        return (1 + r * (t - 1) if self.causal else r * t), h * s, w * s

    def check_input(self, z: Tensor) -> None:
        """Raise ``ValueError`` unless ``z`` is ``(B, in_channels, T', H', W')``."""
        self._check_rank_and_channels(z, self.accepts_images)
        self.output_shape(*(z.shape[2:] if z.ndim == 5 else (1, *z.shape[2:])))


class Discriminator(nn.Module):
    """Base of the GAN discriminators: pixels ``(B, in_channels, ...)`` → one logit per example, ``(B, 1)``."""

    in_channels: int
