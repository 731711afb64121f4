"""The one registry every extension family uses (methods, readers, tasks, ...).

An entry registers itself by name; a duplicate name is an error. Third-party plugins join through the
Python entry-point group given to the registry, loaded the first time the registry is searched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Registry(Generic[T]):
    """A name → object mapping for one family, with entry-point plugins."""

    def __init__(self, family: str, entry_point_group: str | None = None) -> None:
        self.family = family
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@METHODS.register("lora")` above a class or function."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

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
