"""The one registry every extension family uses (methods, readers, tasks, ...).

An entry registers itself with `@FAMILY.register` above its class (or function); the name is taken once, from the
entry's `name` attribute (a function's `__name__` when it has none). A duplicate name is an error. Third-party
plugins join through the Python entry-point group given to the registry, loaded the first time the registry is
searched; a plugin's name is its entry point's. Names a user wrote are checked in one place, `require`, after the
plugins are loaded, so that a config section never needs to import the family it names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class UnknownNameError(ValueError):
    """A config names an extension that no built-in or installed plugin registers."""


class Registry(Generic[T]):
    """A name → object mapping for one family, with entry-point plugins."""

    def __init__(self, family: str, entry_point_group: str | None = None) -> None:
        self.family = family
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, obj: T) -> T:
        """Decorator: `@METHODS.register` above a class with a `name` attribute (or a function)."""
        name = getattr(obj, "name", None) or getattr(obj, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"{self.family} {obj!r} has no `name` to register under")
        self.add(name, obj)
        return obj

    def add(self, name: str, obj: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.family} {name!r} is already registered (by {self._entries[name]!r})")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.family} {name!r}; known: {', '.join(self.names())}") from None

    def require(self, names: Iterable[str], *, key: str) -> None:
        """Refuse names that are not registered, naming the config `key` and the known ones: called by the CLI
        after plugins can load, so a typo fails before any data is read."""
        unknown = [name for name in names if name not in self]
        if unknown:
            known = ", ".join(self.names()) or "none installed"
            raise UnknownNameError(
                f"{key}: unknown {self.family} {', '.join(map(repr, unknown))}; known: {known}"
            )

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_plugins(self) -> None:
        if self._plugins_loaded or self.entry_point_group is None:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._entries:
                continue  # a plugin that is already registered (e.g. imported by hand) is not an error
            try:
                self.add(ep.name, ep.load())
            except Exception as err:  # a broken plugin must not break the built-ins
                logger.warning("could not load %s plugin %r: %s", self.family, ep.name, err)
