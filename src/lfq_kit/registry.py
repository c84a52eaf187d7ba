"""Registries of swappable components, and third-party plugin discovery through entry points.

Every swappable part of lfq-kit (quantizers, encoders, decoders, discriminators, transformers) is a typed
class registered under a short name. YAML configs choose them with ``class_path`` (the short class name,
the full import path, or a plugin's class) and ``init_args``; nothing branches on names.

Third-party packages add components without touching lfq-kit by declaring an entry point in the group
``lfq_kit.quantizers`` or ``lfq_kit.backbones`` whose value is a module (importing it registers its
classes) or a class (registered under its class name)::

    [project.entry-points."lfq_kit.quantizers"]
    my_quantizer = "my_package.quantizer:MyQuantizer"
"""

from __future__ import annotations

import fnmatch
import inspect
import warnings
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T", bound=type)

__all__ = ["BACKBONES", "QUANTIZERS", "Registry", "load_plugins"]


class Registry(Generic[T]):
    """A name → class map with wildcard listing and entry-point plugin loading.

    Args:
        kind: what the registry holds, used in error messages ("quantizer").
        group: the entry-point group scanned by :meth:`load_plugins` ("lfq_kit.quantizers").
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._classes: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, cls: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Register ``cls`` under ``name`` (default: its class name); usable as ``@REG.register`` or
        ``@REG.register(name="...")``.

        Raises:
            TypeError: ``cls`` is not a class.
            ValueError: another class is already registered under that name.
        """

        def add(c: T) -> T:
            if not inspect.isclass(c):
                raise TypeError(f"only classes can be registered as a {self.kind}, got {c!r}")
            key = name or c.__name__
            existing = self._classes.get(key)
            if existing is not None and existing is not c:
                raise ValueError(
                    f"{self.kind} name {key!r} is already registered to "
                    f"{existing.__module__}.{existing.__qualname__}; cannot register "
                    f"{c.__module__}.{c.__qualname__} under it"
                )
            self._classes[key] = c
            return c

        return add if cls is None else add(cls)

    def get(self, name: str) -> T:
        """The class registered as ``name``.

        Raises:
            KeyError: unknown name; the message lists every registered name.
        """
        self.load_plugins()
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names()) or '(none)'}"
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching the shell-style ``pattern`` (``"*"``, ``"Magvit2*"``)."""
        self.load_plugins()
        return sorted(n for n in self._classes if fnmatch.fnmatchcase(n, pattern))

    def load_plugins(self) -> None:
        """Import every entry point of :attr:`group` once; a broken plugin warns and is skipped."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as err:  # a broken third-party package must not break the CLI
                warnings.warn(f"could not load {self.kind} plugin {ep.name!r} ({ep.value}): {err}", stacklevel=2)
                continue
            if inspect.isclass(obj):
                try:
                    self.register(obj)
                except ValueError as err:  # its name is taken by another class: say so instead of dropping it
                    warnings.warn(f"skipped {self.kind} plugin {ep.name!r} ({ep.value}): {err}", stacklevel=2)

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load_plugins()
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


QUANTIZERS: Registry = Registry("quantizer", "lfq_kit.quantizers")
BACKBONES: Registry = Registry("backbone", "lfq_kit.backbones")


def load_plugins() -> None:
    """Load the plugins of every registry (the CLI calls this before parsing)."""
    QUANTIZERS.load_plugins()
    BACKBONES.load_plugins()
