"""Test configuration: runs ``async def`` tests under trio (no plugin needed)."""

from __future__ import annotations

import functools
import inspect
import os

import pytest
import trio

# Peers made by tests use static lists unless a test asks for mDNS explicitly:
# faster, and nothing multicasts by accident (the suite runs in its own netns anyway).
os.environ["NET_DISCOVERY"] = "static"
for _name in [n for n in os.environ if n.startswith("NET_") and n not in ("NET_DISCOVERY", "NET_TEST_NO_NETNS")]:
    del os.environ[_name]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run coroutine test functions with ``trio.run``."""
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    argnames = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in argnames}
    trio.run(functools.partial(fn, **kwargs))
    return True
