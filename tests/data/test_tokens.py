"""Token shards of `lfq-kit predict` as a DataModule: round trip, index checks, and the masked LM's checks."""

import json

import lightning as L
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_tokenizer import RandomClipData, RandomClips

from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.callbacks import TokenWriter
from lfq_kit.data.tokens import TokenDataModule, read_token_split
from lfq_kit.models import VideoTokenizer
from lfq_kit.models.frozen_tokenizer import FrozenTokenizer, tokenizer_hash
from lfq_kit.models.masked_lm import MaskedLM


def _trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **kwargs
    )


@pytest.fixture(scope="module")
def shards(tokenizer_ckpt, tmp_path_factory):
    """train/ and val/ shards of the tiny tokenizer's tokens, written by TokenWriter during predict."""
    root = tmp_path_factory.mktemp("tokens")
    model = VideoTokenizer.load_from_checkpoint(tokenizer_ckpt, map_location="cpu")
    for split in ("train", "val"):
        _trainer(callbacks=[TokenWriter(str(root / split), shard_size=2)]).predict(
            model, datamodule=RandomClipData(frames=5, size=16), return_predictions=False
        )
    return root


def test_shards_round_trip_the_tokenizer_tokens_and_carry_its_hash(shards, tokenizer_ckpt):
    header, tensors, video_ids = read_token_split(shards / "train")
    tok = FrozenTokenizer(tokenizer_ckpt)
    assert header == {"codebook_size": 2**18, "grid": [3, 8, 8], "tokenizer_hash": tok.hash}
    clips = RandomClips(5, 5, 16, seed=2)  # RandomClipData's predict set
    expected = tok.encode(torch.stack([clips[i]["video"] for i in range(5)]))
    assert torch.equal(tensors["indices"], expected)
    assert tensors["labels"].tolist() == [0, 1, 2, 0, 1]
    assert video_ids == [f"clip{i}" for i in range(5)]
    assert tokenizer_hash(tok.model) == tok.hash


def test_datamodule_batches_and_attributes(shards, tokenizer_ckpt):
    data = TokenDataModule(str(shards), batch_size=2)
    data.setup("fit")
    assert data.codebook_size == 2**18 and data.grid == (3, 8, 8) and data.num_classes == 3
    batch = next(iter(data.val_dataloader()))
    assert batch["indices"].shape == (2, 3, 8, 8) and batch["indices"].dtype == torch.int64
    model = MaskedLM(
        TransformerTiny(), tokenizer=str(tokenizer_ckpt), clip_size=(5, 16, 16), num_classes=3, warmup_steps=0
    )
    _trainer(max_steps=2, limit_val_batches=1).fit(model, data)
    assert model.global_step == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codebook_size": 1024}, r"codebook_size 262144 differs from 1024"),
        ({"grid": (3, 4, 4)}, r"grid \[3, 8, 8\] differs from \[3, 4, 4\]"),
        ({"tokenizer_hash": "ab" * 32}, r"tokenizer_hash '.*' differs from 'abab"),
    ],
)
def test_expected_values_that_differ_name_both(shards, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenDataModule(str(shards), **kwargs).setup("fit")


def test_a_masked_lm_whose_tokenizer_differs_from_the_shards_is_refused(shards, tmp_path, tokenizer_ckpt):
    from tokenizer_checkpoint import make_tokenizer_checkpoint

    other = make_tokenizer_checkpoint(tmp_path / "other", seed=1)  # other weights, same architecture
    model = MaskedLM(TransformerTiny(), tokenizer=str(other), clip_size=(5, 16, 16), num_classes=3)
    theirs = FrozenTokenizer(tokenizer_ckpt).hash[:12]
    with pytest.raises(ValueError, match=f"hash {theirs}.*has hash {model.frozen_tokenizer.hash[:12]}"):
        _trainer(max_steps=1).fit(model, TokenDataModule(str(shards)))
    wrong_grid = MaskedLM(TransformerTiny(), grid=(3, 4, 4), codebook_size=2**18, num_classes=3)
    with pytest.raises(ValueError, match=r"grid \(3, 8, 8\) differs from the MaskedLM's grid \(3, 4, 4\)"):
        _trainer(max_steps=1).fit(wrong_grid, TokenDataModule(str(shards)))


def _copy(shards, dest):
    import shutil

    shutil.copytree(shards / "train", dest)
    return dest


def test_corrupt_or_inconsistent_shards_are_named(shards, tmp_path):
    folder = _copy(shards, tmp_path / "a")
    shard = folder / "tokens-rank0-00000.safetensors"
    tensors = load_file(str(shard))
    tensors["indices"][0, 0, 0, 0] = 2**18
    save_file(tensors, str(shard))
    with pytest.raises(ValueError, match=r"tokens-rank0-00000.safetensors: token ids span .*262144\)"):
        read_token_split(folder)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="tokens-rank0-00000.safetensors"):
        read_token_split(folder)
    folder = _copy(shards, tmp_path / "b")
    index = json.loads((folder / "index-rank0.json").read_text())
    index["grid"] = [3, 4, 4]
    (folder / "index-rank1.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"index-rank1.json: grid \[3, 4, 4\] differs from \[3, 8, 8\]"):
        read_token_split(folder)
    with pytest.raises(FileNotFoundError, match="lfq-kit predict"):
        read_token_split(tmp_path / "nothing")
