"""One failure out of nested nurseries, as itself."""

from __future__ import annotations

from typing import NoReturn


def raise_sole(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the only exception inside ``group`` (nested groups included), else the group.

    The bus's nurseries are an implementation detail: one failure (a handler's
    ``UnhandledEvent``, an error in the ``async with bus:`` block) should come
    out as that failure, not wrapped in groups the caller never opened.
    """
    sole: BaseException = group
    while isinstance(sole, BaseExceptionGroup) and len(sole.exceptions) == 1:
        sole = sole.exceptions[0]
    if sole is group:
        raise group
    context = sole.__context__  # keep the chain it had, not the group we caught
    try:
        raise sole
    finally:
        sole.__context__ = context
        del sole, group
