"""One registry style for every pluggable family (segmenters, datasets, dense encoders, executors, template sets).

As in open_clip and timm: a family registers factories by name, lists its names (for `--help` and errors) and
builds by name. Entries may be lazy ('module:attribute'), so listing names imports nothing heavy; a name may take an
argument after a colon ('timm:vit_small_patch16_224'), declared when it is registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories of one family; `Registry('segmenter')` gives errors such as "unknown segmenter 'x'"."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T] | str] = {}  # a factory, or 'module:attribute' not yet imported
        self._arguments: dict[str, str] = {}  # name -> metavar of the argument it takes after 'name:'

    def register(self, name: str, argument: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register a class or factory as `name` (filling a lazy entry of that name is allowed)."""

        def add(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, argument)
            return factory

        return add

    def add(self, name: str, factory: Callable[..., T] | str, argument: str | None = None) -> None:
        """Register `factory` (or a lazy 'module:attribute') as `name`; ValueError if `name` is already taken."""
        current = self._factories.get(name)
        if current is not None and not (isinstance(current, str) and not isinstance(factory, str)):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._factories[name] = factory
        if argument is not None:
            self._arguments[name] = argument

    def names(self) -> list[str]:
        """Registered names in registration order; a name taking an argument shows as 'name:ARGUMENT'."""
        return [f"{n}:{self._arguments[n]}" if n in self._arguments else n for n in self._factories]

    def __contains__(self, spec: object) -> bool:
        return isinstance(spec, str) and self._split(spec) is not None

    def get(self, spec: str) -> Callable[..., T]:
        """The factory registered for `spec` (imported if lazy); ValueError listing the names if there is none."""
        split = self._split(spec)
        if split is None:
            raise ValueError(f"unknown {self.kind} {spec!r}; available: {', '.join(self.names()) or 'none'}")
        return self._resolve(split[0])

    def create(self, spec: str, *args, **kwargs) -> T:
        """Build `spec` with `args` and `kwargs`; a name taking an argument gets the part after 'name:' first."""
        split = self._split(spec)
        factory = self.get(spec)
        assert split is not None
        return factory(split[1], *args, **kwargs) if split[0] in self._arguments else factory(*args, **kwargs)

    def _split(self, spec: str) -> tuple[str, str | None] | None:
        """(name, argument) of a spec, or None when it names nothing registered."""
        if spec in self._factories and spec not in self._arguments:
            return spec, None
        name, sep, argument = spec.partition(":")
        if sep and argument and name in self._arguments:
            return name, argument
        return None

    def _resolve(self, name: str) -> Callable[..., T]:
        factory = self._factories[name]
        if isinstance(factory, str):
            module, _, attribute = factory.partition(":")
            loaded = getattr(importlib.import_module(module), attribute)
            if isinstance(self._factories[name], str):  # the module did not register itself by decorator
                self._factories[name] = loaded
            factory = self._factories[name]
        assert not isinstance(factory, str)
        return factory
