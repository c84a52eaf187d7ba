"""The one-way import rule of docs/layout.md, read from the source (every import statement, function-level ones
included): data flows files → data → models → metrics and callbacks, lower layers never import higher ones, and
nothing but ``python -m lfq_kit`` imports the CLI."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "lfq_kit"
# Packages and modules below the models: the reusable math, the data pipeline and the helpers every layer uses.
LOWER = ("quantizers", "nn", "backbones", "losses", "data", "io", "seeding", "distributed", "registry")
# What builds on the models (and so must not be imported from below them).
HIGHER = ("models", "callbacks", "commands", "compression", "pretrained", "cli")


def imported_parts(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, top-level part of lfq_kit)`` of every import of lfq_kit in ``source``, the code of ``module``
    (dotted; relative imports are resolved against it)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name.split(".")[1]) for name in names if name.startswith("lfq_kit.")]
    return found


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        yield path, ".".join(parts[:-1] if is_package else parts), is_package


def violations(owners: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path, module, is_package in modules():
        owner = module.split(".")[1] if "." in module else ""
        if owner not in owners:
            continue
        for line, part in imported_parts(path.read_text(), module, is_package):
            if part in forbidden and part != owner:
                bad.append(f"{path.relative_to(SRC)}:{line} imports lfq_kit.{part}")
    return bad


def test_the_import_reader_resolves_relative_and_absolute_imports():
    source = "from ..cli import main\nfrom . import helpers\nimport lfq_kit.models.tokenizer\n"
    source += "def f():\n    from .. import io\n"
    expected = [(1, "cli"), (2, "pretrained"), (3, "models"), (5, "io")]
    assert imported_parts(source, "lfq_kit.pretrained.lightning_config") == expected
    assert imported_parts("from .tokenizer import VideoTokenizer\n", "lfq_kit.models", is_package=True) == [
        (1, "models")
    ]
    assert imported_parts("import torch\nfrom torch import nn\n", "lfq_kit.nn.causal") == []


def test_nothing_imports_the_cli():
    owners = tuple({module.split(".")[1] for _, module, _ in modules() if "." in module} - {"cli", "__main__"})
    assert violations(owners, ("cli",)) == []


RULES = {
    "lower-layers": (LOWER, HIGHER + ("metrics",)),  # the models' building blocks know nothing of the models
    "metrics": (("metrics",), HIGHER),  # the models use metrics, so metrics never use the models
    "models": (("models",), ("callbacks", "commands", "compression", "pretrained", "cli")),
}


@pytest.mark.parametrize("owners, forbidden", RULES.values(), ids=RULES.keys())
def test_lower_layers_never_import_higher_ones(owners, forbidden):
    assert violations(owners, forbidden) == []
