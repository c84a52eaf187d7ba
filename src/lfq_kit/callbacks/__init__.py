"""Lightning callbacks: reconstruction logging and token writing."""

from .reconstruction_logger import ReconstructionLogger, frame_grid
from .token_writer import TokenWriter

__all__ = ["ReconstructionLogger", "TokenWriter", "frame_grid"]
