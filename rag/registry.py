"""A small factory per backend family (embedders, generators): names registered with a factory, plus
``module:Class`` for backends that live outside rag (a user's own, or a test fake).

A factory takes the spec it was asked for and the family's settings and returns the backend; it imports the
backend's module itself, so registering costs nothing and ``rag --help`` stays instant.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Generic, TypeVar

from rag.errors import ConfigError

T = TypeVar("T")
S = TypeVar("S")

_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_class_path(spec: str) -> bool:
    """``package.module:Class`` (not a Windows drive path or a hub id)."""
    return bool(_CLASS_PATH.match(spec.strip())) and len(spec.split(":", 1)[0]) > 1


def import_class(spec: str, family: str) -> type:
    module_name, _, attr = spec.strip().partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{family} {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{family} {spec!r}: {module_name} has no class {attr!r}")
    return cls


class Registry(Generic[T, S]):
    """Factories of one family by name. ``create`` resolves a spec: a registered name (or alias), then a
    ``module:Class`` path (the class is built with ``from_settings(settings)`` when it has one, else with no
    arguments), then ``fallback`` (e.g. a model folder), else an error listing the names."""

    def __init__(self, family: str, fallback: Callable[[str, S], T] | None = None) -> None:
        self.family = family
        self._factories: dict[str, Callable[[str, S], T]] = {}
        self._aliases: dict[str, str] = {}
        self._fallback = fallback

    def register(self, name: str, factory: Callable[[str, S], T], *, aliases: tuple[str, ...] = ()) -> None:
        key = name.strip().lower()
        self._factories[key] = factory
        for alias in (key, *aliases):
            self._aliases[alias.strip().lower()] = key

    def names(self) -> list[str]:
        return sorted(self._factories)

    def canonical(self, spec: str) -> str:
        """The registered name of ``spec`` (an alias resolved), or ``spec`` itself, trimmed."""
        return self._aliases.get(spec.strip().lower(), spec.strip())

    def __contains__(self, spec: str) -> bool:
        return spec.strip().lower() in self._aliases

    def create(self, spec: str, settings: S) -> T:
        name = self.canonical(spec)
        factory = self._factories.get(name.lower())
        if factory is not None:
            return factory(name, settings)
        if is_class_path(name):
            cls = import_class(name, self.family)
            build = getattr(cls, "from_settings", None)
            return build(settings) if callable(build) else cls()  # type: ignore[no-any-return]
        if self._fallback is not None:
            return self._fallback(name, settings)
        raise ConfigError(
            f"unknown {self.family} {spec!r}; choose one of {', '.join(self.names())} or a module:Class path"
        )
