"""Registries of the classes a YAML ``class_path`` may name, and third-party plugin discovery through entry points.

Every swappable part of lfq-kit is a typed class listed in a registry under its class name: quantizers,
backbones (encoders, decoders, discriminators, transformers), models (LightningModules), data modules and
callbacks. YAML configs choose them with ``class_path`` (the short class name, the full import path, or a
plugin's class) and ``init_args``; nothing branches on names.

A registry name is always the class name, because that is what YAML resolves: jsonargparse resolves a short
``class_path`` to the imported subclass of the argument's declared type with that ``__name__`` (an alias
would not resolve). Each registry checks that its classes subclass that type (:attr:`Registry.base`), so
``lfq-kit list`` shows exactly the names YAML accepts.

A registry lists its built-in classes whatever was imported first (as timm's does): on first use
(``names()``, ``get()``, ``in``, ``len``, iteration) it imports its built-in modules, then its plugins.
Quantizers and backbones register with the :meth:`Registry.register` decorator; models, data modules and
callbacks are collected from their packages' ``__all__`` (every public, concrete subclass of the base), so a
new model exported from :mod:`lfq_kit.models` is listed without registering it.

This module imports nothing of lfq-kit at import time (its submodules import it to register).

Third-party packages add components without touching lfq-kit by declaring an entry point in the registry's
group (``lfq_kit.quantizers``, ``lfq_kit.backbones``, ``lfq_kit.models``, ``lfq_kit.data``,
``lfq_kit.callbacks``) whose value is a module (importing it registers its classes) or a class (registered
under its class name)::

    [project.entry-points."lfq_kit.quantizers"]
    my_quantizer = "my_package.quantizer:MyQuantizer"
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import warnings
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)

__all__ = [
    "BACKBONES",
    "CALLBACKS",
    "DATAMODULES",
    "MODELS",
    "QUANTIZERS",
    "REGISTRIES",
    "Registry",
    "import_components",
    "load_plugins",
]


def _import_object(path: str) -> object:
    """``"package.module:Name"`` → the object."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class Registry(Generic[T]):
    """A name → class map with lazy built-ins, wildcard listing and entry-point plugin loading.

    Args:
        kind: what the registry holds, used in messages ("quantizer").
        group: the entry-point group scanned for plugins ("lfq_kit.quantizers").
        modules: modules imported on first use so that their built-in classes are listed
            (``("lfq_kit.quantizers",)``); imported lazily, never when this registry is created.
        base: ``"module:Name"`` of the type every class must subclass: the declared type of the YAML argument
            the classes go into (``"torch.nn:Module"``); None accepts any class.
        collect: also register every public (``__all__``), concrete subclass of ``base`` that ``modules``
            export, instead of relying on ``@register`` decorators.

    Raises:
        ValueError: ``collect`` without a ``base``.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        modules: Sequence[str] = (),
        base: str | None = None,
        collect: bool = False,
    ) -> None:
        if collect and base is None:
            raise ValueError(f"{kind} registry: collect=True needs a base type to collect")
        self.kind = kind
        self.group = group
        self.modules = tuple(modules)
        self.collect = collect
        self._base_path = base
        self._base: type | None = None
        self._classes: dict[str, T] = {}
        self._loaded = False
        self._loading = False

    @property
    def base(self) -> type:
        """The type every registered class subclasses (``object`` when the registry has none)."""
        if self._base is None:
            self._base = object if self._base_path is None else _import_object(self._base_path)
        return self._base

    def register(self, cls: T) -> T:
        """Register ``cls`` under its class name; usable as the decorator ``@REG.register``.

        There is no alias: a ``class_path`` resolves by class name, so an alias would be listed but not
        accepted in YAML. Rename the class instead.

        Raises:
            TypeError: ``cls`` is not a class, or not a subclass of :attr:`base`.
            ValueError: another class is already registered under its name.
        """
        if not inspect.isclass(cls):
            raise TypeError(f"only classes can be registered as a {self.kind}, got {cls!r}")
        if not issubclass(cls, self.base):
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__} is not a subclass of {self.base.__module__}."
                f"{self.base.__qualname__}, the type YAML accepts as a {self.kind}; it cannot be registered"
            )
        key = cls.__name__
        existing = self._classes.get(key)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"{self.kind} name {key!r} is already registered to "
                f"{existing.__module__}.{existing.__qualname__}; cannot register "
                f"{cls.__module__}.{cls.__qualname__} under it"
            )
        self._classes[key] = cls
        return cls

    def load(self) -> None:
        """Import the built-in modules (collecting their classes if ``collect``), then every plugin, once.

        Raises:
            ImportError: a built-in module failed to import (a broken plugin only warns).
        """
        if self._loaded or self._loading:  # _loading: a built-in module that lists this registry on import
            return
        self._loading = True
        try:
            for name in self.modules:
                module = importlib.import_module(name)
                if self.collect:
                    self._collect(module)
            self._loaded = True
        finally:
            self._loading = False
        self._load_plugins()

    def _collect(self, module: object) -> None:
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isclass(obj) and issubclass(obj, self.base) and obj is not self.base:
                if not inspect.isabstract(obj):
                    self.register(obj)

    def _load_plugins(self) -> None:
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as err:  # a broken third-party package must not break the CLI
                warnings.warn(f"could not load {self.kind} plugin {ep.name!r} ({ep.value}): {err}", stacklevel=3)
                continue
            if inspect.isclass(obj):
                try:
                    self.register(obj)
                except (TypeError, ValueError) as err:  # say why instead of dropping it silently
                    warnings.warn(f"skipped {self.kind} plugin {ep.name!r} ({ep.value}): {err}", stacklevel=3)
            elif self.collect and inspect.ismodule(obj):
                self._collect(obj)

    def get(self, name: str) -> T:
        """The class registered as ``name``.

        Raises:
            KeyError: unknown name; the message lists every registered name.
        """
        self.load()
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names()) or '(none)'}"
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching the shell-style ``pattern`` (``"*"``, ``"Magvit2*"``)."""
        self.load()
        return sorted(n for n in self._classes if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


QUANTIZERS: Registry = Registry(
    "quantizer", "lfq_kit.quantizers", modules=("lfq_kit.quantizers",), base="lfq_kit.quantizers.base:Quantizer"
)
BACKBONES: Registry = Registry("backbone", "lfq_kit.backbones", modules=("lfq_kit.backbones",), base="torch.nn:Module")
MODELS: Registry = Registry(
    "model", "lfq_kit.models", modules=("lfq_kit.models",), base="lightning.pytorch:LightningModule", collect=True
)
DATAMODULES: Registry = Registry(
    "data module",
    "lfq_kit.data",
    modules=("lfq_kit.data",),
    base="lightning.pytorch:LightningDataModule",
    collect=True,
)
CALLBACKS: Registry = Registry(
    "callback",
    "lfq_kit.callbacks",
    modules=("lfq_kit.callbacks", "lfq_kit.data"),
    base="lightning.pytorch.callbacks:Callback",
    collect=True,
)

REGISTRIES: dict[str, Registry] = {
    "quantizers": QUANTIZERS,
    "backbones": BACKBONES,
    "models": MODELS,
    "data": DATAMODULES,
    "callbacks": CALLBACKS,
}
"""Every registry by the name ``lfq-kit list`` takes."""


def load_plugins() -> None:
    """Load the built-ins and plugins of every registry (the CLI calls this before parsing)."""
    for registry in REGISTRIES.values():
        registry.load()


# Imported besides the registries' modules: classes YAML names by path (perceptual losses, metrics).
_EXTRA_PACKAGES = ("lfq_kit.losses", "lfq_kit.metrics")


def import_components() -> None:
    """Import lfq-kit's components (every registry's built-ins) and every plugin, so short ``class_path`` names
    resolve (the CLI and the converters' config resolution call this; it lives here so neither imports the other)."""
    for name in _EXTRA_PACKAGES:
        importlib.import_module(name)
    load_plugins()
