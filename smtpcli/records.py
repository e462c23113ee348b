"""Plain record classes for the objects a ``send`` creates: what ``@dataclass`` would give
(equality, repr, ``replace``), written once here instead of generated per class.

``@dataclass`` compiles each class's ``__init__``, ``__repr__`` and ``__eq__`` from source text
at import, about 0.5 ms a class on this project's reference machine; the 21 classes a plain
``send`` imported cost 9.7 ms of a 85 ms run (issue 17). A subclass lists its fields in
``__slots__`` (their order is the repr and equality order) and assigns them in ``__init__``.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """Fields in ``__slots__``; ``_hidden`` names fields kept out of repr() (secrets)."""

    __slots__: tuple[str, ...] = ()
    _hidden: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                          if name not in self._hidden)
        return f"{type(self).__qualname__}({parts})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, like @dataclass(eq=True)

    def replace(self: R, **changes: Any) -> R:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__qualname__} has no field(s) {sorted(unknown)}")
        new = object.__new__(type(self))
        for name in self.__slots__:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new


class FrozenRecord(Record):
    """An immutable, hashable record (``@dataclass(frozen=True)``); ``__init__`` sets fields
    with ``_set``."""

    __slots__: tuple[str, ...] = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen record")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen record")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __setstate__(self, state: Any) -> None:
        """copy/pickle restore the fields here (their default path assigns, which raises)."""
        fields = state[1] if isinstance(state, tuple) else state
        self._set(**fields)
