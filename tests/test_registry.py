"""Registry: registration by class name, base types, lazy built-ins, collection, wildcards, errors, plugins."""

import ast
import json
import subprocess
import sys
import typing
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from jsonargparse._typehints import resolve_class_path_by_name  # the rule YAML's short class_path follows
from jsonargparse._util import import_object
from torch import nn

import lfq_kit
from lfq_kit.models import VideoTokenizer
from lfq_kit.quantizers import Quantizer
from lfq_kit.registry import BACKBONES, QUANTIZERS, REGISTRIES, Registry

REGISTRY_PY = Path(lfq_kit.__file__).with_name("registry.py")


def make_registry() -> Registry:
    reg = Registry("widget", "lfq_kit.tests_no_such_group")

    @reg.register
    class Alpha:
        pass

    @reg.register
    class BetaSmall:
        pass

    @reg.register
    class BetaLarge:
        pass

    return reg


def test_register_get_and_wildcards():
    reg = make_registry()
    assert reg.names() == ["Alpha", "BetaLarge", "BetaSmall"]
    assert reg.names("Beta*") == ["BetaLarge", "BetaSmall"]
    assert reg.get("Alpha").__name__ == "Alpha"
    assert "BetaSmall" in reg and len(reg) == 3 and list(reg) == reg.names()


def test_unknown_name_lists_registered_ones():
    with pytest.raises(KeyError, match="unknown widget 'nope'; registered widgets: Alpha, BetaLarge, BetaSmall"):
        make_registry().get("nope")


def test_duplicate_name_is_an_error_but_reregistering_the_same_class_is_not():
    reg = make_registry()
    alpha = reg.get("Alpha")
    assert reg.register(alpha) is alpha
    with pytest.raises(ValueError, match="'Alpha' is already registered"):
        reg.register(type("Alpha", (), {}))
    with pytest.raises(TypeError, match="only classes"):
        reg.register(lambda: None)


def test_names_are_class_names_only():
    """An alias would be listed but not accepted by YAML (class_path resolves by class name): there is none."""
    with pytest.raises(TypeError):
        make_registry().register(name="beta_small")  # the former alias keyword


def test_a_class_outside_the_base_type_is_refused():
    from collections import OrderedDict

    reg = Registry("quantizer", "lfq_kit.tests_no_such_group", base="lfq_kit.quantizers.base:Quantizer")
    assert reg.base is Quantizer
    with pytest.raises(TypeError, match=r"OrderedDict is not a subclass of lfq_kit.quantizers.base.Quantizer"):
        reg.register(OrderedDict)


def test_builtin_quantizers_are_registered():
    assert {"LFQ", "VQ", "FSQ", "BSQ"} <= set(QUANTIZERS.names())


def _fresh_names(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_registries_list_their_builtins_whatever_was_imported_first():
    """Regression: after `import lfq_kit` alone, BACKBONES was empty (only quantizers were imported)."""
    here = {kind: reg.names() for kind, reg in REGISTRIES.items()}  # this process imported everything
    assert {"Magvit2Encoder", "Magvit1Decoder", "StyleGANDiscriminator3d"} <= set(here["backbones"])
    assert "VideoTokenizer" in here["models"] and "UCF101DataModule" in here["data"]
    assert {"TokenWriter", "ReconstructionLogger", "SkippedFilesReport"} <= set(here["callbacks"])
    after_package = _fresh_names(
        "import json, lfq_kit; print(json.dumps({k: r.names() for k, r in lfq_kit.REGISTRIES.items()}))"
    )
    assert after_package == here
    # the first use triggers the import: `in` and get() too, with nothing but the registry imported by hand
    flags = _fresh_names(
        "import json, sys; from lfq_kit.registry import BACKBONES, CALLBACKS; "
        "before = 'lfq_kit.backbones' in sys.modules; found = 'Magvit1Encoder' in BACKBONES; "
        "print(json.dumps([before, found, CALLBACKS.get('TokenWriter').__name__]))"
    )
    assert flags == [False, True, "TokenWriter"]


def test_registry_module_imports_nothing_of_lfq_kit():
    """lfq-kit's submodules import the registry to register: importing them back would be a circle."""
    for node in ast.walk(ast.parse(REGISTRY_PY.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("lfq_kit"), ast.unparse(node)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("lfq_kit") for a in node.names), ast.unparse(node)


def test_every_registered_name_resolves_as_yaml_does():
    """`lfq-kit list` shows exactly what YAML accepts: each name resolves, as a short class_path of its
    registry's base type, to the registered class; and the bases are the types the model arguments declare."""
    hints = typing.get_type_hints(VideoTokenizer.__init__)
    assert BACKBONES.base is hints["encoder"] is hints["decoder"] is nn.Module
    assert typing.get_args(hints["quantizer"])[-1] is QUANTIZERS.base is Quantizer  # Callable[[int], Quantizer]
    for kind, registry in REGISTRIES.items():
        assert registry.names(), kind
        for name in registry.names():
            path = resolve_class_path_by_name(registry.base, name)
            assert import_object(path) is registry.get(name), (kind, name, path)


WIDGETS = """
from abc import ABC, abstractmethod

__all__ = ["Base", "Concrete", "Abstract", "helper", "Other"]


class Base(ABC):
    pass


class Concrete(Base):
    pass


class Abstract(Base):
    @abstractmethod
    def f(self): ...


class Hidden(Base):  # not exported
    pass


class Other:  # exported, not a Base
    pass


def helper():
    pass
"""


def test_collect_lists_public_concrete_subclasses_on_first_use(tmp_path, monkeypatch):
    (tmp_path / "lfq_kit_test_widgets.py").write_text(WIDGETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lfq_kit_test_widgets", raising=False)
    reg = Registry(
        "widget",
        "lfq_kit.tests_no_such_group",
        modules=["lfq_kit_test_widgets"],
        base="lfq_kit_test_widgets:Base",
        collect=True,
    )
    assert "lfq_kit_test_widgets" not in sys.modules  # nothing imported when the registry is made
    assert reg.names() == ["Concrete"]
    assert reg.get("Concrete") is sys.modules["lfq_kit_test_widgets"].Concrete
    with pytest.raises(ValueError, match="collect=True needs a base"):
        Registry("widget", "g", collect=True)


def test_entry_point_plugins_load_and_broken_ones_warn(monkeypatch):
    reg = Registry("widget", "lfq_kit.widgets")
    good = EntryPoint("ordered", "collections:OrderedDict", "lfq_kit.widgets")
    broken = EntryPoint("broken", "no_such_module_xyz:Thing", "lfq_kit.widgets")
    monkeypatch.setattr(
        "lfq_kit.registry.entry_points", lambda group: [good, broken] if group == "lfq_kit.widgets" else []
    )
    with pytest.warns(UserWarning, match="could not load widget plugin 'broken'"):
        assert reg.names() == ["OrderedDict"]
    assert reg.get("OrderedDict").__module__ == "collections"


def test_plugin_whose_name_is_taken_or_type_is_wrong_warns(monkeypatch):
    reg = Registry("widget", "lfq_kit.widgets")
    OrderedDict = type("OrderedDict", (), {})  # a different class already holding the name
    reg.register(OrderedDict)
    clash = EntryPoint("ordered", "collections:OrderedDict", "lfq_kit.widgets")
    monkeypatch.setattr("lfq_kit.registry.entry_points", lambda group: [clash] if group == "lfq_kit.widgets" else [])
    with pytest.warns(UserWarning, match="skipped widget plugin 'ordered'.*already registered"):
        assert reg.get("OrderedDict") is OrderedDict

    typed = Registry("backbone", "lfq_kit.widgets", base="torch.nn:Module")
    with pytest.warns(UserWarning, match="skipped backbone plugin 'ordered'.*not a subclass of torch.nn"):
        assert typed.names() == []
