"""Bad usage exits 2 with a message that says what was wrong; help and version work."""

from __future__ import annotations

import pytest

from net.cli import main
from tests.cli._cli import Runner, cli_env


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2, f"exit {info.value.code} for {argv}"
    err = capsys.readouterr().err
    assert "usage: netpeer" in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["call"], "the following arguments are required: PEER, CONNECTION"),
        (["call", "127.0.0.1:1"], "required: CONNECTION"),
        (["call", "127.0.0.1:1", "add", "--kw", "novalue"], "--kw takes KEY=VALUE, got 'novalue'"),
        (["call", "127.0.0.1:1", "add", "--kw", "1x=2"], "'1x' is not a valid keyword name"),
        (["call", "127.0.0.1:1", "add", "--kw", "a=1", "--kw", "a=2"], "--kw a is given twice"),
        (["call", "127.0.0.1:1", "add", "--timeout", "0"], "must be a number of seconds > 0"),
        (["peers", "--wait", "soon"], "'soon' is not a number of seconds"),
        (["peers", "--port", "70000"], "70000 is not a port number"),
        (["peers", "--peers", "nohost"], "'nohost' is not host:port"),
        (["peers", "--peers", "h:99999"], "port must be in 1..65535"),
        (["peers", "--interfaces", "eth0,,lo"], "NET_INTERFACES='eth0,,lo' is not valid"),
        (["peers", "--discovery", "carrier-pigeon"], "invalid choice: 'carrier-pigeon'"),
        (["peers", "--log-level", "loud"], "invalid choice: 'LOUD'"),
        (["sub"], "required: EVENT"),
        (["sub", "x", "--count", "0"], "0 must be at least 1"),
        (["trigger", ""], "EVENT must be 1..255 characters"),
        (["info"], "required: PEER"),
        (["run", "does/not/exist.py"], "does/not/exist.py: no such file"),
        (["run", "not a module!"], "is neither a module name nor a path"),
        (["doctor", "--timeout", "-1"], "must be a number of seconds > 0"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, *argv)


@pytest.mark.parametrize("command", ["peers", "call", "run"])
def test_bad_net_variable_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setenv("NET_PORT_RANGE", "lots")
    argv = {"peers": ["peers"], "call": ["call", "127.0.0.1:9", "x"], "run": ["run"]}[command]
    err = usage_error(capsys, *argv)
    assert "NET_PORT_RANGE='lots' is not an integer" in err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("run", "peers", "info", "sub", "trigger", "call", "doctor"):
        assert f"    {command} " in out
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("netpeer ")


def test_real_executable_exits_2_on_bad_usage(netpeer: Runner) -> None:
    done = netpeer.run("call", "somewhere", env=cli_env(), timeout=20)
    assert done.returncode == 2
    assert "required: CONNECTION" in done.stderr
    done = netpeer.run("sub", "temperature", "--count", "-3", timeout=20)
    assert done.returncode == 2
    assert "-3 must be at least 1" in done.stderr
    # an interface this host does not have is found when the peer starts: still usage
    done = netpeer.run("peers", "--interfaces", "eth9", "--discovery", "mdns", timeout=20)
    assert done.returncode == 2
    assert "NET_INTERFACES=eth9: no interface named 'eth9'" in done.stderr
