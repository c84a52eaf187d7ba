"""Lightning callbacks: reconstruction and sample logging, token writing."""

from .generation_logger import GenerationLogger, video_grid
from .reconstruction_logger import ReconstructionLogger, frame_grid
from .token_writer import TokenWriter

__all__ = ["GenerationLogger", "ReconstructionLogger", "TokenWriter", "frame_grid", "video_grid"]
