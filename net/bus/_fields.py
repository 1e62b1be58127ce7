"""What the fields of an Event class are, and checking values that claim to fit them.

Field names and defaults are read from the class annotations without evaluating
them (so forward references cost nothing at class creation); the types are
resolved only when :meth:`Event.from_fields` first needs them. Checking walks
the value against the annotation, converting only what a wire format loses
(lists back to tuples and sets, ints to floats, bytearray to bytes), with a
depth limit so hostile nesting fails clearly instead of exhausting the stack.
"""

from __future__ import annotations

import collections.abc as cabc
import copy
import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, Union

from ._describe import describe_names, describe_value

if typing.TYPE_CHECKING:
    from ._event import Event

#: How deeply nested containers (and nested events) may be in ``from_fields``.
MAX_DEPTH = 32

#: Names an Event field may not take: they are the Event API itself.
RESERVED_NAMES = frozenset({"event_name", "to_fields", "from_fields"})

_CLASSVAR_TEXT = re.compile(r"^\s*((typing|t)\.)?ClassVar\b")
_MUTABLE_DEFAULTS = (list, dict, set, bytearray)
_NO_DEFAULT = object()


class TooDeep(ValueError):
    """Nesting beyond ``MAX_DEPTH``: final, whatever alternatives a ``Union`` offers."""


@dataclass
class FieldSpec:
    """The fields of one Event class, in declaration order (base classes first)."""

    names: tuple[str, ...]
    defaults: dict[str, object]
    name_set: frozenset[str] = frozenset()
    _types: dict[str, object] | None = field(default=None, repr=False)

    def fresh_default(self, name: str) -> object:
        """The default of ``name``; mutable builtin containers are copied per event."""
        value = self.defaults[name]
        return copy.copy(value) if isinstance(value, _MUTABLE_DEFAULTS) else value


def build_spec(cls: type[Event], event_base: type) -> FieldSpec:
    """Collect the annotated, public, non-ClassVar names of ``cls`` and its Event bases."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, event_base)) or klass is event_base:
            continue
        for name, annotation in inspect.get_annotations(klass).items():
            if name.startswith("_") or _is_classvar(annotation):
                continue
            if name in RESERVED_NAMES:
                raise TypeError(
                    f"{cls.__qualname__}: {name!r} is part of the Event API, not a field"
                )
            names[name] = None
    defaults: dict[str, object] = {}
    for name in names:
        value = _class_default(cls, name)
        if value is not _NO_DEFAULT:
            defaults[name] = value
    return FieldSpec(tuple(names), defaults, frozenset(names))


def _class_default(cls: type, name: str) -> object:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _NO_DEFAULT


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):
        return bool(_CLASSVAR_TEXT.match(annotation))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


def field_types(cls: type[Event], spec: FieldSpec) -> dict[str, object]:
    """The resolved annotation of every field; unresolvable ones count as ``Any``."""
    if spec._types is None:
        # The classes' own names resolve too, so an event can refer to itself
        # even when it is defined inside a function.
        own_names = {klass.__name__: klass for klass in reversed(cls.__mro__)}
        try:
            hints = typing.get_type_hints(cls, localns=own_names)
        except Exception:
            hints = _hints_class_by_class(cls)
        spec._types = {name: hints.get(name, Any) for name in spec.names}
    return spec._types


def _hints_class_by_class(cls: type) -> dict[str, object]:
    hints: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        globalns = vars(module) if module is not None else {}
        for name, annotation in inspect.get_annotations(klass).items():
            if isinstance(annotation, str):
                try:
                    localns = {klass.__name__: klass, cls.__name__: cls, **vars(klass)}
                    annotation = eval(annotation, globalns, localns)
                except Exception:
                    annotation = Any
            hints[name] = annotation
    return hints


def convert_fields(
    cls: type[Event], spec: FieldSpec, data: object, depth: int = 0, where: str | None = None
) -> dict[str, Any]:
    """Check ``data`` (a mapping of field names to values) against the fields of ``cls``.

    Returns the keyword arguments to build the event with. Raises ``TypeError``
    for a non-mapping, non-string keys, unknown or missing fields and values of
    the wrong type, ``ValueError`` for values of the right type that don't fit
    (a ``Literal``, an ``Enum``, too deep a nesting).
    """
    where = cls.event_name if where is None else where
    if not isinstance(data, Mapping):
        raise TypeError(
            f"{where}: fields must be a mapping of names to values, not {describe_value(data)}"
        )
    keys = list(data.keys())
    odd = [key for key in keys if not isinstance(key, str)]
    if odd:
        raise TypeError(f"{where}: field names must be strings, got {describe_value(odd[0])}")
    unknown = [key for key in keys if key not in spec.name_set]
    if unknown:
        raise TypeError(
            f"{where} has no field(s) {describe_names(unknown)}; "
            f"its fields are {describe_names(list(spec.names), limit=20)}"
        )
    missing = [name for name in spec.names if name not in data and name not in spec.defaults]
    if missing:
        raise TypeError(f"{where}: missing field(s) {describe_names(missing)}")
    types_ = field_types(cls, spec)
    return {key: _check(data[key], types_[key], f"{where}.{key}", depth) for key in keys}


def _check(value: object, tp: object, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TooDeep(f"{path}: nested more than {MAX_DEPTH} levels deep")
    if tp is Any or tp is object or isinstance(tp, TypeVar):
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _check(value, args[0], path, depth)
    if origin is Union or origin is types.UnionType:
        return _check_union(value, tp, args, path, depth)
    if origin is Literal:
        for choice in args:
            if type(value) is type(choice) and value == choice:
                return value
        raise ValueError(f"{path}: expected one of {list(args)!r}, got {describe_value(value)}")
    if tp is None or tp is type(None):
        return _expect(value is None, value, None, path)
    if isinstance(tp, str):  # an annotation we could not resolve: take it as it is
        return value
    checker = _SCALARS.get(tp) if isinstance(tp, type) else None
    if checker is not None:
        return checker(value, path)
    container = origin if origin is not None else tp
    convert = _CONTAINERS.get(container) if isinstance(container, type) else None
    if convert is not None:
        return convert(value, tp, args, path, depth)
    if isinstance(tp, type):
        return _check_class(value, tp, path, depth)
    if isinstance(origin, type):  # some other generic, e.g. defaultdict[str, int]
        return _expect(isinstance(value, origin), value, origin, path)
    return value  # NewType, ParamSpec...: not something we can check


def _check_union(value: object, tp: object, args: tuple[object, ...], path: str, depth: int) -> Any:
    deeper: list[Exception] = []
    for arg in args:
        try:
            return _check(value, arg, path, depth)
        except TooDeep:
            raise
        except (TypeError, ValueError) as exc:
            if not str(exc).startswith(f"{path}:"):
                deeper.append(exc)  # the value had the right shape; something inside did not fit
    if len(deeper) == 1:
        raise deeper[0]
    raise TypeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")


def _check_class(value: object, tp: type, path: str, depth: int) -> Any:
    from ._event import Event  # a field may hold another event

    if isinstance(value, tp):
        return value
    if issubclass(tp, Event) and isinstance(value, Mapping):
        return tp._from_fields_at_depth(value, depth + 1, path)
    if issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except Exception:
            raise ValueError(f"{path}: {describe_value(value)} is not a {tp.__name__}") from None
    raise TypeError(f"{path}: expected {tp.__name__}, got {describe_value(value)}")


def _expect(ok: bool, value: object, tp: object, path: str) -> Any:
    if not ok:
        raise TypeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")
    return value


def _type_name(tp: object) -> str:
    if tp is None or tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def _bool(value: object, path: str) -> Any:
    return _expect(isinstance(value, bool), value, bool, path)


def _int(value: object, path: str) -> Any:
    return _expect(isinstance(value, int) and not isinstance(value, bool), value, int, path)


def _float(value: object, path: str) -> Any:
    if isinstance(value, float):
        return value
    _expect(isinstance(value, int) and not isinstance(value, bool), value, float, path)
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(f"{path}: {describe_value(value)} is too large for a float") from None


def _str(value: object, path: str) -> Any:
    return _expect(isinstance(value, str), value, str, path)


def _bytes(value: object, path: str) -> Any:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return _expect(False, value, bytes, path)


_SCALARS: dict[type, Callable[[object, str], Any]] = {
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
    bytes: _bytes,
}


def _items(value: object, tp: object, path: str) -> list[object] | tuple[object, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")
    return value


_PLAIN = frozenset({str, int, float, bool, bytes})


def _fits_as_is(value: object, tp: object) -> bool:
    """A quick yes for the common case, so long containers cost no path strings."""
    return tp is Any or tp is object or (tp in _PLAIN and type(value) is tp)


def _check_items(items: cabc.Iterable[object], item_tp: object, path: str, depth: int) -> list[Any]:
    return [
        item if _fits_as_is(item, item_tp) else _check(item, item_tp, f"{path}[{i}]", depth + 1)
        for i, item in enumerate(items)
    ]


def _list(value: object, tp: object, args: tuple[object, ...], path: str, depth: int) -> Any:
    items = _items(value, tp, path)
    return _check_items(items, args[0] if args else Any, path, depth)


def _tuple(value: object, tp: object, args: tuple[object, ...], path: str, depth: int) -> Any:
    items = _items(value, tp, path)
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        return tuple(_check_items(items, args[0] if args else Any, path, depth))
    if args == ((),):
        args = ()
    if len(items) != len(args):
        raise ValueError(f"{path}: expected {len(args)} items, got {len(items)}")
    pairs = enumerate(zip(items, args, strict=True))
    return tuple(_check(item, arg, f"{path}[{i}]", depth + 1) for i, (item, arg) in pairs)


def _set(value: object, tp: object, args: tuple[object, ...], path: str, depth: int) -> Any:
    if isinstance(value, (set, frozenset)):
        items: cabc.Iterable[object] = value
    else:
        items = _items(value, tp, path)
    checked = _check_items(items, args[0] if args else Any, path, depth)
    try:
        result = set(checked)
    except TypeError:
        raise TypeError(f"{path}: set items must be hashable") from None
    container = typing.get_origin(tp) or tp
    return frozenset(result) if container is frozenset else result


def _dict(value: object, tp: object, args: tuple[object, ...], path: str, depth: int) -> Any:
    if not isinstance(value, Mapping):
        raise TypeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")
    key_tp, value_tp = args if len(args) == 2 else (Any, Any)
    result: dict[Any, Any] = {}
    for key, item in value.items():
        if _fits_as_is(key, key_tp) and _fits_as_is(item, value_tp):
            result[key] = item
            continue
        key_path = f"{path}[{describe_value(key)}]"
        try:
            result[_check(key, key_tp, key_path, depth + 1)] = _check(
                item, value_tp, key_path, depth + 1
            )
        except TypeError as exc:
            if "unhashable" in str(exc):
                raise TypeError(f"{key_path}: mapping keys must be hashable") from None
            raise
    return result


_CONTAINERS: dict[type, Callable[[object, object, tuple[object, ...], str, int], Any]] = {
    list: _list,
    cabc.Sequence: _list,
    cabc.MutableSequence: _list,
    tuple: _tuple,
    set: _set,
    frozenset: _set,
    cabc.Set: _set,
    cabc.MutableSet: _set,
    dict: _dict,
    cabc.Mapping: _dict,
    cabc.MutableMapping: _dict,
}
