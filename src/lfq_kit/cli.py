"""The ``lfq-kit`` command: LightningCLI over lfq-kit's modules, plus extra non-Trainer commands.

``lfq-kit fit|validate|test|predict`` is LightningCLI in subclass mode: ``--model`` and ``--data`` take any
LightningModule / LightningDataModule by ``class_path`` (short class names work once the class is imported,
which this module ensures for lfq-kit's own classes and for plugins). Configs compose with repeated
``-c/--config`` (later files override earlier ones) and the resolved config is saved as ``config.yaml`` in
each run's log directory. Optimizers and schedulers are arguments of the models (``OptimizerCallable``),
not LightningCLI's automatic ones, since the tokenizer steps a generator and a discriminator.

Extra commands (``lfq-kit list``; later ``compress``, ``generate``, ...) are looked up in :data:`COMMANDS`
and dispatched before LightningCLI parses anything.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import Callable, NoReturn, Sequence

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .registry import BACKBONES, QUANTIZERS, Registry, load_plugins

__all__ = ["COMMANDS", "LfqKitCLI", "main"]

# Subpackages whose import registers the classes that YAML may name by short class name.
_COMPONENT_PACKAGES = (
    "lfq_kit.quantizers",
    "lfq_kit.backbones",
    "lfq_kit.losses",
    "lfq_kit.metrics",
    "lfq_kit.models",
    "lfq_kit.data",
    "lfq_kit.callbacks",
)


def import_components() -> None:
    """Import lfq-kit's component packages and every plugin, so short ``class_path`` names resolve."""
    for name in _COMPONENT_PACKAGES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # the package exists but one of its imports is missing: say so
                raise
    load_plugins()


_UNRESOLVED_CLASS = re.compile(r"Expected a dot import path string: (\S+)|[Cc]lass path ['\"]?([\w.]+)['\"]? does not")


class LfqKitArgumentParser(LightningArgumentParser):
    """Adds the registered names to the error for a ``class_path`` that names no known class."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        names = {a or b for a, b in _UNRESOLVED_CLASS.findall(message)}
        if names:
            message += (
                f"\n{', '.join(sorted(names))}: not an importable class path or known class name."
                f"\n  Registered quantizers: {', '.join(QUANTIZERS.names()) or '(none)'}"
                f"\n  Registered backbones: {', '.join(BACKBONES.names()) or '(none)'}"
                "\n  (lfq-kit list shows them with their import paths.)"
            )
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


def _list_command(argv: Sequence[str]) -> int:
    registries: dict[str, Registry] = {"quantizers": QUANTIZERS, "backbones": BACKBONES}
    parser = argparse.ArgumentParser(prog="lfq-kit list", description="List registered components.")
    parser.add_argument("kind", nargs="?", choices=sorted(registries), help="which registry (default: all)")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'Magvit2*'")
    args = parser.parse_args(list(argv))
    for kind in [args.kind] if args.kind else sorted(registries):
        reg = registries[kind]
        print(f"{kind}:")
        for name in reg.names(args.pattern):
            cls = reg.get(name)
            print(f"  {name:<24} {cls.__module__}.{cls.__qualname__}")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"list": _list_command}
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
