"""The checkpoint side shared by the models that consume a frozen tokenizer's tokens (masked LM, token-target
video pretraining): the tokenizer's path and hash are saved in the consumer's checkpoint instead of its weights,
and loading refuses a tokenizer whose tokens differ from the ones the consumer was trained on."""

from __future__ import annotations

from typing import Any

from .frozen_tokenizer import FrozenTokenizer

__all__ = ["TokenConsumer"]


class TokenConsumer:
    """Mixin for a LightningModule holding ``self.frozen_tokenizer`` (a :class:`FrozenTokenizer` or None).

    ``on_save_checkpoint`` stores ``checkpoint["tokenizer"] = {"path", "hash"}``; ``on_load_checkpoint`` raises
    ``ValueError`` (naming both paths and hashes) when the stored hash differs from the current tokenizer's. Both
    call ``super()``, so the mixin composes with the others in any order.
    """

    frozen_tokenizer: FrozenTokenizer | None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.frozen_tokenizer is not None:
            checkpoint["tokenizer"] = {"path": self.frozen_tokenizer.path, "hash": self.frozen_tokenizer.hash}
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("tokenizer")
        tok = self.frozen_tokenizer
        if saved is not None and tok is not None and saved["hash"] != tok.hash:
            raise ValueError(
                f"this {type(self).__name__} was trained on the tokens of tokenizer {saved['path']!r} (hash "
                f"{saved['hash'][:12]}), but {tok.path!r} has hash {tok.hash[:12]}: its tokens differ; retrain or "
                "point `tokenizer` at the original checkpoint"
            )
        super().on_load_checkpoint(checkpoint)
