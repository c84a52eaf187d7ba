"""Lightning callbacks: kill-safe checkpoints, reconstruction and sample logging, token writing."""

from .atomic_checkpoint import AtomicModelCheckpoint
from .generation_logger import GenerationLogger, video_grid
from .reconstruction_logger import ReconstructionLogger, frame_grid
from .token_writer import TokenWriter

__all__ = [
    "AtomicModelCheckpoint",
    "GenerationLogger",
    "ReconstructionLogger",
    "TokenWriter",
    "frame_grid",
    "video_grid",
]
