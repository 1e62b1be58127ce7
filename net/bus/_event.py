"""The ``Event`` base class: typed fields from keyword arguments, a stable wire name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from ._describe import describe_names, short_repr
from ._fields import FieldSpec, build_spec, convert_fields
from ._names import register_event_class


class Event:
    """Base class of typed events: subclass it and annotate the fields.

    ``Event(**fields)`` sets every annotated field from its keyword argument or
    from the class-level default (mutable builtin defaults such as ``[]`` are
    copied per event). An unknown keyword, or a missing field without default,
    is a ``TypeError``. Names starting with ``_`` and ``ClassVar`` annotations
    are not fields. Subclasses may add defaults, methods and their own
    ``__init__`` that calls ``super().__init__(**attrs)``.

    Every class has a stable wire name, ``event_name``: ``module.QualName`` by
    default, or chosen with ``class Foo(Event, name="app.foo")``. The name is
    how a receiver finds the class again (:func:`lookup_event_class`).
    """

    event_name: ClassVar[str] = "net.bus.Event"
    _net_spec: ClassVar[FieldSpec] = FieldSpec((), {}, frozenset())

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        in_body = cls.__dict__.get("event_name")
        if name is not None and in_body is not None and name != in_body:
            raise TypeError(
                f"{cls.__qualname__}: name={name!r} and event_name={in_body!r} disagree; give one"
            )
        chosen = name if name is not None else in_body
        if chosen is None:
            chosen = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(chosen, str) or not chosen.strip():
            raise TypeError(f"{cls.__qualname__}: an event name must be a non-empty string")
        cls.event_name = chosen
        cls._net_spec = build_spec(cls, Event)
        register_event_class(cls)

    def __init__(self, **attrs: Any) -> None:
        cls = type(self)
        spec = cls._net_spec
        unknown = [key for key in attrs if key not in spec.name_set]
        if unknown:
            raise TypeError(
                f"{cls.__qualname__}() got unknown field(s) {describe_names(unknown)}; "
                f"its fields are {describe_names(list(spec.names), limit=20)}"
            )
        missing = []
        for name in spec.names:
            if name in attrs:
                setattr(self, name, attrs[name])
            elif name in spec.defaults:
                setattr(self, name, spec.fresh_default(name))
            else:
                missing.append(name)
        if missing:
            raise TypeError(f"{cls.__qualname__}() missing field(s) {describe_names(missing)}")

    def to_fields(self) -> dict[str, Any]:
        """The field values by name (a new, shallow dict): what a wire format carries."""
        values = {}
        for name in type(self)._net_spec.names:
            try:
                values[name] = getattr(self, name)
            except AttributeError:
                continue  # a handler deleted it; there is nothing to carry
        return values

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Self:
        """Build an event from untrusted field values, checking them against the annotations.

        Raises ``TypeError`` for a non-mapping, unknown or missing fields and
        values of the wrong type; ``ValueError`` for values of the right type
        that don't fit (``Literal``, ``Enum``, nesting deeper than
        ``MAX_DEPTH``). Lists become tuples or sets where the field says so.
        """
        return cls._from_fields_at_depth(fields, 0)

    @classmethod
    def _from_fields_at_depth(cls, fields: object, depth: int, where: str | None = None) -> Self:
        return cls(**convert_fields(cls, cls._net_spec, fields, depth, where))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={short_repr(value)}" for name, value in self.to_fields().items())
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return type(self) is type(other) and self.to_fields() == other.to_fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value
