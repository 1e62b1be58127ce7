"""NET_* configuration: defaults, old app-net names, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from net import ConfigError, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.port, s.port_range, s.group, s.hub, s.peers) == (3010, 100, "default", False, ())
    assert s.heartbeat_timeout <= 3.0
    assert s.max_frame == 8 * 1024 * 1024
    assert s.name


def test_old_app_net_variables_keep_working() -> None:
    s = Settings.from_env(
        {
            "NET_PORT": "4000",
            "NET_PORT_RANGE": "5",
            "NET_GROUP": "g1",
            "NET_IS_HUB": "",
            "NET_DEV": "1",
        }
    )
    assert (s.port, s.port_range, s.group, s.hub, s.log_level) == (4000, 5, "g1", True, "DEBUG")


def test_static_peers_and_overrides() -> None:
    s = Settings.from_env({"NET_PEERS": "127.0.0.1:4000, [::1]:5000,", "NET_NAME": "x"}, name="y")
    assert s.peers == ("127.0.0.1:4000", "[::1]:5000")
    assert s.name == "y"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("NET_PORT", "abc"),
        ("NET_PORT", "70000"),
        ("NET_PORT_RANGE", "0"),
        ("NET_IS_HUB", "maybe"),
        ("NET_PEERS", "nohostport"),
        ("NET_PEERS", "host:0"),
        ("NET_HEARTBEAT_TIMEOUT", "soon"),
        ("NET_HEARTBEAT_TIMEOUT", "nan"),
        ("NET_MAX_FRAME", "12"),
        ("NET_QUEUE_POLICY", "yolo"),
        ("NET_DISCOVERY", "carrier-pigeon"),
        ("NET_LOG_LEVEL", "LOUD"),
        ("NET_AUTOSTART", "2"),
        ("NET_CALL_SPIN", "fast"),
        ("NET_CALL_SPIN", "-0.001"),
        ("NET_CALL_SPIN", "nan"),
        ("NET_CALL_SPIN", "inf"),
        ("NET_CALL_SPIN", "0.5"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: value})
    assert var in str(info.value)


def test_call_spin_is_seconds_and_zero_turns_it_off() -> None:
    assert Settings.from_env({}).call_spin == 0.0005
    assert Settings.from_env({"NET_CALL_SPIN": "0"}).call_spin == 0.0
    assert Settings.from_env({"NET_CALL_SPIN": " 0.002 "}).call_spin == 0.002
    with pytest.raises(ConfigError, match="call_spin"):
        Settings(call_spin=-1.0)
    with pytest.raises(ConfigError, match="call_spin"):
        Settings(call_spin=1.0)


def test_heartbeat_timeout_must_exceed_interval() -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"NET_HEARTBEAT_INTERVAL": "2", "NET_HEARTBEAT_TIMEOUT": "1"})


def test_cli_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "net.cli", "--version"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.startswith("netpeer ")
    out = subprocess.run(
        [sys.executable, "-m", "net.cli", "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "netpeer" in out.stdout
