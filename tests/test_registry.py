"""Registry: registration, wildcards, errors, entry-point plugins."""

from importlib.metadata import EntryPoint

import pytest

from lfq_kit.registry import QUANTIZERS, Registry


def make_registry() -> Registry:
    reg = Registry("widget", "lfq_kit.tests_no_such_group")

    @reg.register
    class Alpha:
        pass

    @reg.register(name="beta_small")
    class Beta:
        pass

    @reg.register(name="beta_large")
    class Gamma:
        pass

    return reg


def test_register_get_and_wildcards():
    reg = make_registry()
    assert reg.names() == ["Alpha", "beta_large", "beta_small"]
    assert reg.names("beta_*") == ["beta_large", "beta_small"]
    assert reg.get("Alpha").__name__ == "Alpha"
    assert "beta_small" in reg and len(reg) == 3


def test_unknown_name_lists_registered_ones():
    with pytest.raises(KeyError, match="unknown widget 'nope'; registered widgets: Alpha, beta_large, beta_small"):
        make_registry().get("nope")


def test_duplicate_name_is_an_error_but_reregistering_the_same_class_is_not():
    reg = make_registry()
    alpha = reg.get("Alpha")
    assert reg.register(alpha) is alpha
    with pytest.raises(ValueError, match="'Alpha' is already registered"):
        reg.register(type("Alpha", (), {}))
    with pytest.raises(TypeError, match="only classes"):
        reg.register(lambda: None)


def test_builtin_quantizers_are_registered():
    assert {"LFQ", "VQ", "FSQ", "BSQ"} <= set(QUANTIZERS.names())


def test_entry_point_plugins_load_and_broken_ones_warn(monkeypatch):
    reg = Registry("widget", "lfq_kit.widgets")
    good = EntryPoint("ordered", "collections:OrderedDict", "lfq_kit.widgets")
    broken = EntryPoint("broken", "no_such_module_xyz:Thing", "lfq_kit.widgets")
    monkeypatch.setattr("lfq_kit.registry.entry_points", lambda group: [good, broken] if group == "lfq_kit.widgets" else [])
    with pytest.warns(UserWarning, match="could not load widget plugin 'broken'"):
        assert reg.names() == ["OrderedDict"]
    assert reg.get("OrderedDict").__module__ == "collections"


def test_plugin_whose_name_is_taken_warns(monkeypatch):
    reg = Registry("widget", "lfq_kit.widgets")
    OrderedDict = type("OrderedDict", (), {})  # a different class already holding the name
    reg.register(OrderedDict)
    clash = EntryPoint("ordered", "collections:OrderedDict", "lfq_kit.widgets")
    monkeypatch.setattr("lfq_kit.registry.entry_points", lambda group: [clash] if group == "lfq_kit.widgets" else [])
    with pytest.warns(UserWarning, match="skipped widget plugin 'ordered'.*already registered"):
        assert reg.get("OrderedDict") is OrderedDict
