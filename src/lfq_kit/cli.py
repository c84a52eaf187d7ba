"""The ``lfq-kit`` command: LightningCLI over lfq-kit's modules, plus extra non-Trainer commands.

``lfq-kit fit|validate|test|predict`` is LightningCLI in subclass mode: ``--model`` and ``--data`` take any
LightningModule / LightningDataModule by ``class_path`` (short class names work once the class is imported,
which this module ensures for lfq-kit's own classes and for plugins). Configs compose with repeated
``-c/--config`` (later files override earlier ones) and the resolved config is saved as ``config.yaml`` in
each run's log directory. Optimizers and schedulers are arguments of the models (``OptimizerCallable``),
not LightningCLI's automatic ones, since the tokenizer steps a generator and a discriminator.

Extra commands (``lfq-kit list``: every class a ``class_path`` may name, from :data:`lfq_kit.registry.REGISTRIES`;
later ``compress``, ``generate``, ...) are looked up in :data:`COMMANDS` and dispatched before LightningCLI
parses anything.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.model_helpers import is_overridden

from .registry import REGISTRIES, import_components

__all__ = ["COMMANDS", "LfqKitArgumentParser", "LfqKitCLI", "main"]

QUICKSTART = "lfq-kit fit --config configs/quickstart.yaml"
"""The command a user without a config is pointed at."""


_UNRESOLVED_CLASS = re.compile(r"Expected a dot import path string: (\S+)|[Cc]lass path ['\"]?([\w.]+)['\"]? does not")
_MISSING_MODEL = re.compile(r"arguments are required: .*?\b(fit|validate|test|predict)\.model\b")
_REGISTRY_HINT = "(lfq-kit list shows them with their import paths.)"


def _unresolved_class_hint(names: set[str]) -> str:
    lines = [f"{', '.join(sorted(names))}: not an importable class path or known class name."]
    for kind, registry in REGISTRIES.items():
        lines.append(f"  Registered {kind}: {', '.join(registry.names()) or '(none)'}")
    return "\n".join([*lines, "  " + _REGISTRY_HINT])


def _missing_config_hint(command: str) -> str:
    lines = [
        f"lfq-kit {command} needs a model and data, usually from config files: configs/ (in the lfq-kit "
        "repository) holds ready ones. Start with",
        f"  {QUICKSTART}",
    ]
    if command != "fit":
        lines.append(f"or rerun a trained model: lfq-kit {command} --config <run dir>/config.yaml --ckpt_path <.ckpt>")
    lines.append(f"(lfq-kit {command} --help lists every option; lfq-kit list every class_path name.)")
    return "\n".join(lines)


class LfqKitArgumentParser(LightningArgumentParser):
    """Adds hints to errors: the registered names for a ``class_path`` that names no known class, and the
    configs to start from when ``--model`` is missing (no config given).

    Only the parser that reports the error adds them: nested parsers (one per ``class_path``) raise with
    ``exit_on_error`` off and their message is embedded in the top-level one, which would otherwise repeat
    the block.
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if self.exit_on_error:
            names = {a or b for a, b in _UNRESOLVED_CLASS.findall(message)}
            if names and _REGISTRY_HINT not in message:
                message += "\n" + _unresolved_class_hint(names)
            missing = _MISSING_MODEL.search(message)
            if missing:
                message += "\n" + _missing_config_hint(missing.group(1))
        super().error(message, ex)


class LfqKitCLI(LightningCLI):
    """LightningCLI with lfq-kit's defaults: subclass mode for models and data, no automatic optimizers,
    and the resolved config written next to every run (overwriting is allowed for repeated runs)."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, **kwargs) -> None:
        import_components()
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("parser_kwargs", {"prog": "lfq-kit"})
        kwargs.setdefault("parser_class", LfqKitArgumentParser)
        super().__init__(args=None if args is None else list(args), run=run, **kwargs)

    def before_fit(self) -> None:
        """Refuse ``fit`` of a predict-only module (``TokenizeClips``) with the command that runs it, instead of
        Lightning's "no training_step" error."""
        if not is_overridden("training_step", self.model, L.LightningModule):
            name = type(self.model).__name__
            raise SystemExit(
                f"lfq-kit fit: {name} trains nothing; it only predicts: run `lfq-kit predict` with the "
                "same config (e.g. `lfq-kit predict --config configs/quickstart_tokens.yaml`)"
            )


def _list_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lfq-kit list",
        description="List the classes a YAML class_path may name: the short name (first column) or the import "
        "path (second), plugins included. Lightning's own classes (ModelCheckpoint, ...) are accepted too.",
    )
    parser.add_argument("kind", nargs="?", choices=list(REGISTRIES), help="which registry (default: all)")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'Magvit2*'")
    args = parser.parse_args(list(argv))
    for kind in [args.kind] if args.kind else list(REGISTRIES):
        registry = REGISTRIES[kind]
        names = registry.names(args.pattern)
        width = max([24, *map(len, names)])
        print(f"{kind}:")
        for name in names:
            cls = registry.get(name)
            print(f"  {name:<{width}} {cls.__module__}.{cls.__qualname__}")
    return 0


def _lazy(module: str, name: str) -> Callable[[Sequence[str]], int]:
    """A command whose module (and its heavy imports) loads only when the command runs."""

    def run(argv: Sequence[str]) -> int:
        return getattr(importlib.import_module(module), name)(argv)

    return run


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "list": _list_command,
    "generate": _lazy("lfq_kit.commands.generate", "generate_command"),
    "compress": _lazy("lfq_kit.commands.compress", "compress_command"),
    "decompress": _lazy("lfq_kit.commands.compress", "decompress_command"),
    "fit-prior": _lazy("lfq_kit.commands.compress", "fit_prior_command"),
    "rd": _lazy("lfq_kit.commands.rd", "rd_command"),
    "convert": _lazy("lfq_kit.commands.convert", "convert_command"),
}
"""Extra commands, name → ``fn(argv) -> exit code``; dispatched before LightningCLI."""


def _print_extra_commands() -> None:
    print("\nlfq-kit commands besides the Trainer's (fit, validate, test, predict):")
    for name in COMMANDS:
        print(f"  {name:<10} (lfq-kit {name} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lfq-kit`` console script and ``python -m lfq_kit``."""
    args = list(sys.argv[1:] if argv is None else argv)
    import_components()
    if args and args[0] in COMMANDS:
        return COMMANDS[args[0]](args[1:])
    if args in ([], ["-h"], ["--help"]):
        try:
            LfqKitCLI(args=["--help"])
        except SystemExit as exit_:
            _print_extra_commands()
            return int(exit_.code or 0)
    # LightningCLI reads sys.argv itself when called as a script (and warns if given both).
    LfqKitCLI(args=None if argv is None else args)
    return 0
