"""The package itself: a thin public namespace, stdlib and trio only, no import side effects."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import net.bus

BUS_DIR = Path(net.bus.__file__).parent
ALLOWED_TOP_LEVEL = {"trio", "net"}


def test_all_names_exist_and_are_documented() -> None:
    for name in net.bus.__all__:
        obj = getattr(net.bus, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"


def test_imports_are_stdlib_trio_or_the_bus_itself() -> None:
    for path in BUS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside net.bus
                    assert node.level == 1, f"{path.name} reaches outside net.bus"
                    continue
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top in ALLOWED_TOP_LEVEL, (
                    f"{path.name} imports {module}"
                )
                assert top != "net", f"{path.name} imports {module}: the bus stands alone"


def test_importing_starts_no_thread_and_opens_no_file() -> None:
    script = textwrap.dedent(
        """
        import os, threading
        before = set(os.listdir("/proc/self/fd"))
        import net.bus, net.testing
        after = set(os.listdir("/proc/self/fd"))
        assert threading.active_count() == 1, threading.enumerate()
        assert after <= before, (before, after)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
