"""One small name -> object registry, used for benchmarks, families, proxies and modes."""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

from lpzero_jax.errors import UserError

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """A name (family, mode, proxy, ...) that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # the message, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A named table of objects filled by the `register` decorator.

    Lookups of unknown names raise a KeyError that lists what is registered, so a typo in a
    config gives an answer instead of a traceback into an if-chain.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list:
        return sorted(self._items)
