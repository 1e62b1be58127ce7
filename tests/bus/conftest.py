"""Every bus test gets a fresh current registry, so module-level handlers never leak."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from net.bus import EventRegistry
from net.testing import isolated_registry


@pytest.fixture(autouse=True)
def registry() -> Iterator[EventRegistry]:
    with isolated_registry() as fresh:
        yield fresh
