"""Video compression with tokenizer tokens (MAGVIT-v2, arXiv 2310.05737, video compression study): the ``.lfq``
container, the token priors (``packed``, ``factorized``, ``mlm``) with range coding, compress / decompress, codec
baselines and rate–distortion evaluation. See docs/compression.md."""

from .container import CHUNK_OVERHEAD_BYTES, FORMAT_VERSION, HEADER_FIXED_BYTES, CompressedFileError, StreamHeader
from .decoder import DecodedChunk, DecompressReport, decode_tokens, decompress_video, read_file_header
from .encoder import CompressReport, compress_video
from .factorized import FactorizedPrior, fit_factorized_prior, sidecar_path
from .layout import plan_chunks, valid_length
from .mlm_prior import MaskedLMPrior
from .packed import PackedPrior
from .prior import TokenPrior
from .source import FileSource, FrameSource, SquareResizedSource, TensorSource

__all__ = [
    "CHUNK_OVERHEAD_BYTES",
    "FORMAT_VERSION",
    "HEADER_FIXED_BYTES",
    "CompressReport",
    "CompressedFileError",
    "DecodedChunk",
    "DecompressReport",
    "FactorizedPrior",
    "FileSource",
    "FrameSource",
    "MaskedLMPrior",
    "PackedPrior",
    "SquareResizedSource",
    "StreamHeader",
    "TensorSource",
    "TokenPrior",
    "compress_video",
    "decode_tokens",
    "decompress_video",
    "fit_factorized_prior",
    "plan_chunks",
    "read_file_header",
    "sidecar_path",
    "valid_length",
]
