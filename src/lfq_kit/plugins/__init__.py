"""Lightning Trainer plugins: a checkpoint writer whose files are complete or absent."""

from .atomic_checkpoint_io import AtomicCheckpointIO

__all__ = ["AtomicCheckpointIO"]
