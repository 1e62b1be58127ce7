"""The real ``netpeer`` in separate processes, peers found through static lists.

A ``netpeer run`` daemon hosts ``apps/service.py``; the other commands find it
with ``--peers`` (and the peers it is linked to), call it, subscribe to and
trigger events, and see it leave with a goodbye on SIGTERM.
"""

from __future__ import annotations

import json
import re
import signal
import time

from tests.cli._cli import APPS, Runner, cli_env, unique

SERVICE = str(APPS / "service.py")
STATIC = ("--discovery", "static")


def at(ready: dict[str, object]) -> str:
    return f"127.0.0.1:{ready['port']}"


def test_daemon_is_found_by_peers_and_answers_info(netpeer: Runner) -> None:
    daemon, ready = netpeer.daemon(SERVICE)
    assert ready["modules"] == ["service"]
    assert set(ready["connections"]) >= {"add", "fail", "echo", "publish", "pings"}  # type: ignore[arg-type]
    assert ready["events"] == ["temperature"] and ready["subscribed"] == ["ping"]

    done = netpeer.run("peers", "--peers", at(ready), *STATIC, "--json")
    assert done.returncode == 0, done.stderr
    [found] = json.loads(done.stdout)
    assert found["name"] == ready["name"] and found["id"] == ready["id"]
    assert found["address"] == at(ready)
    assert found["connections"]["add"] == "add(a, b)"
    assert found["events"] == ["temperature"] and found["subscribed"] == ["ping"]
    assert found["group"] == "default" and found["hub"] is False

    done = netpeer.run("peers", "--peers", at(ready), *STATIC)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.strip().splitlines()
    assert header.split() == [
        "NAME", "ADDRESS", "GROUP", "HUB", "ID", "LINKS", "CONNECTIONS", "EVENTS", "SUBSCRIBES",
    ]  # fmt: skip
    assert row.startswith(f"{ready['name']}  {at(ready)}  default")
    assert "add, echo, fail, pings, publish" in row and "temperature" in row

    done = netpeer.run("info", ready["name"], "--peers", at(ready), *STATIC)  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    assert f"{ready['name']}  ({at(ready)})" in done.stdout
    assert "  add(a, b)" in done.stdout and "  fail(message)" in done.stdout
    assert "subscribes to: ping" in done.stdout
    assert re.search(r"counters: sent \d+, dropped 0, missed 0, pruned \d+, errors 0", done.stdout)

    done = netpeer.run("info", at(ready), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["id"] == ready["id"]
    assert info["connections"]["fail"] == "fail(message)"
    assert isinstance(info["counters"], dict) and isinstance(info["pruned"], list)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_call_prints_results_and_remote_errors_exit_1(netpeer: Runner) -> None:
    daemon, ready = netpeer.daemon(SERVICE)
    done = netpeer.run("call", at(ready), "add", "1", "2")
    assert (done.returncode, done.stdout.strip()) == (0, "3")
    done = netpeer.run("call", at(ready), "add", '"net"', "peer")
    assert (done.returncode, done.stdout.strip()) == (0, "netpeer")
    done = netpeer.run(
        "call", at(ready), "echo", "[1, 2]", "x", "--kw", "flag=true", "--kw", "n=null", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"result": [[[1, 2], "x"], {"flag": True, "n": None}]}
    # by name: looked up through the static peer
    done = netpeer.run("call", str(ready["name"]), "add", "2", "2", "--peers", at(ready), *STATIC)
    assert (done.returncode, done.stdout.strip()) == (0, "4"), done.stderr

    done = netpeer.run("call", at(ready), "fail", "boom")
    assert done.returncode == 1
    assert "fail raised ValueError" in done.stderr and "boom" in done.stderr
    assert "--- remote traceback ---" in done.stderr
    assert 'service.py", line' in done.stderr and "ValueError: boom" in done.stderr
    done = netpeer.run("call", at(ready), "fail", "boom", "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "ValueError" and error["message"] == "boom"
    assert "raise ValueError(message)" in error["traceback"]

    done = netpeer.run("call", at(ready), "nope")
    assert done.returncode == 1
    assert "has no connection 'nope'; it offers: add, echo, fail" in done.stderr

    done = netpeer.run(
        "call", "ghost", "add", "1", "2", "--peers", at(ready), *STATIC, "--wait", "0.2"
    )
    assert done.returncode == 1
    assert "no peer 'ghost' found" in done.stderr and str(ready["name"]) in done.stderr
    # the temporary peers said goodbye every time, also after errors
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert not [line for line in daemon.err if "lost peer" in line], daemon.tail()


def test_sub_prints_what_trigger_sends_and_what_the_daemon_publishes(netpeer: Runner) -> None:
    daemon, ready = netpeer.daemon(SERVICE)
    sub = netpeer.spawn(
        "sub", "temperature", "--peers", at(ready), *STATIC, "--json", "--count", "2", name="sub"
    )
    other = netpeer.spawn("sub", "temperature", "--peers", at(ready), *STATIC, name="sub-plain")
    # the daemon logs each subscriber it gets
    daemon.expect_err(rf"subscriber netpeer-sub-{sub.pid} .*added for event 'temperature'")
    daemon.expect_err(rf"subscriber netpeer-sub-{other.pid} .*added for event 'temperature'")
    done = netpeer.run("info", at(ready), "--json")
    subscribers = json.loads(done.stdout)["subscriptions"]["temperature"]
    assert sorted(subscribers) == sorted(f"netpeer-sub-{p.pid}" for p in (sub, other))

    # the trigger's peer links to the daemon, then (following the daemon's links) to both subs
    done = netpeer.run(
        "trigger", "temperature", "21.5", "--kw", 'unit="F"', "--peers", at(ready), *STATIC
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"temperature\(21\.5 unit=\"F\"\) delivered to 2 subscribers: ", done.stdout)
    first = sub.expect_json(lambda o: o.get("event") == "temperature")
    assert first["args"] == [21.5] and first["kwargs"] == {"unit": "F"}
    assert first["from"]["name"].startswith("netpeer-trigger-")
    other.expect_out(
        r"^\[[0-9:.]+\] temperature from netpeer-trigger-\d+ \(127\.0\.0\.1:\d+\): 21\.5 unit=\"F\"$"
    )

    # the daemon publishes too
    done = netpeer.run("call", at(ready), "publish", "7")
    assert done.returncode == 0, done.stderr
    assert sub.wait() == 0  # --count 2 reached: exits by itself
    events = [o for o in sub.json_lines() if o.get("event") == "temperature"]
    assert [e["args"] for e in events] == [[21.5], [7]]
    assert events[1]["from"] == {"id": ready["id"], "name": ready["name"], "address": at(ready)}
    assert events[1]["kwargs"] == {"unit": "C"}
    other.expect_out(rf"temperature from {ready['name']} \({at(ready)}\): 7 unit=\"C\"$")
    other.signal(signal.SIGINT)  # Ctrl-C ends sub normally
    assert other.wait() == 0


def test_trigger_reports_delivery_to_the_daemons_subscription(netpeer: Runner) -> None:
    _daemon, ready = netpeer.daemon(SERVICE)
    done = netpeer.run(
        "trigger", "ping", "1", "two", "--kw", "x=[3]", "--peers", at(ready), *STATIC, "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["count"] == 1
    assert report["delivered"] == [{"id": ready["id"], "name": ready["name"], "address": at(ready)}]
    assert report["failed"] == {} and report["not_subscribed"] == []
    done = netpeer.run("call", at(ready), "pings", "--json")
    assert json.loads(done.stdout) == {"result": [[[1, "two"], {"x": [3]}]]}

    done = netpeer.run("trigger", "nobody-listens", "--peers", at(ready), *STATIC)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nobody-listens() delivered to 0 subscribers"


def test_sigterm_stops_the_daemon_cleanly_with_goodbyes(netpeer: Runner) -> None:
    a, ready_a = netpeer.daemon(SERVICE, name=unique("alpha"))
    b, ready_b = netpeer.daemon(name=unique("beta"), extra=("--peers", at(ready_a)))
    a_linked = b.expect_json(lambda o: o.get("event") == "linked")
    assert a_linked["peer"]["id"] == ready_a["id"]
    a.expect_json(lambda o: o.get("event") == "linked" and o["peer"]["id"] == ready_b["id"])

    sent = time.monotonic()
    a.signal(signal.SIGTERM)
    assert a.wait() == 0
    stopped = time.monotonic() - sent
    assert [o["event"] for o in a.json_lines()][-2:] == ["stopping", "stopped"]
    assert any("SIGTERM received; saying goodbye" in line for line in a.err), a.tail()
    # B saw a goodbye (a clean "left", not a "lost peer"), at once
    gone = b.expect_json(lambda o: o.get("event") == "unlinked")
    assert gone["peer"]["id"] == ready_a["id"]
    b.expect_err(rf"peer {ready_a['name']} .* left: bye")
    assert not [line for line in b.err if "lost peer" in line], b.tail()
    assert stopped < 5.0

    b.signal(signal.SIGINT)  # Ctrl-C works the same
    assert b.wait() == 0


def test_module_by_dotted_name_and_several_modules(netpeer: Runner) -> None:
    _daemon, ready = netpeer.daemon("tests.cli.apps.service", str(APPS / "extra.py"))
    assert ready["modules"] == ["tests.cli.apps.service", "extra"]
    assert "add" in ready["connections"] and "version" in ready["connections"]  # type: ignore[operator]
    done = netpeer.run("call", at(ready), "version")
    assert (done.returncode, done.stdout.strip()) == (0, "extra 1")


def test_module_that_fails_to_import_is_an_error_with_traceback(netpeer: Runner) -> None:
    broken = netpeer.spawn("run", str(APPS / "broken.py"), "--port", "0", *STATIC)
    assert broken.wait() == 1
    err = "\n".join(broken.err)
    assert "broken.py failed to import" in err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: broken on purpose" in err

    missing = netpeer.spawn("run", "no_such_module_here", "--port", "0", *STATIC)
    assert missing.wait() == 1
    assert any("cannot import 'no_such_module_here'" in line for line in missing.err)


def test_port_in_use_is_a_clear_error(netpeer: Runner) -> None:
    _daemon, ready = netpeer.daemon()
    clash = netpeer.spawn("run", "--port", str(ready["port"]), "--port-range", "1", *STATIC)
    assert clash.wait() == 1
    assert any(
        "cannot start the peer: no free port" in line and "NET_PORT" in line for line in clash.err
    ), clash.tail()


def test_peers_reports_a_static_peer_that_does_not_answer(netpeer: Runner) -> None:
    done = netpeer.run("peers", "--peers", "127.0.0.1:9", *STATIC, "--wait", "0.5")
    assert done.returncode == 1
    assert "(no peers)" in done.stdout
    assert "127.0.0.1:9 did not answer" in done.stderr


def test_flags_override_net_variables_for_the_daemon(netpeer: Runner) -> None:
    env = cli_env(NET_GROUP="from-env", NET_IS_HUB="1", NET_NAME="env-name")
    _daemon, ready = netpeer.daemon(env=env)
    assert ready["name"] != "env-name"  # the runner gives --name: a flag wins over NET_NAME
    assert ready["group"] == "from-env" and ready["hub"] is True  # from the environment
    _daemon, ready = netpeer.daemon(env=env, extra=("--group", "from-flag", "--no-hub"))
    assert ready["group"] == "from-flag" and ready["hub"] is False  # flags win


def test_trigger_publishes_as_a_member_of_a_group(netpeer: Runner) -> None:
    # the daemon's @net.subscribe("ping") matches publishers of its own group only
    _daemon, ready = netpeer.daemon(SERVICE, extra=("--group", "lab"))
    args = ("--peers", at(ready), *STATIC, "--json")
    done = netpeer.run("trigger", "ping", "1", *args, "--wait", "0.5")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["count"] == 0 and report["not_subscribed"] == [ready["id"]]
    assert f"{ready['name']} handles 'ping' but did not subscribe" in done.stderr
    assert "see --group" in done.stderr
    done = netpeer.run("trigger", "ping", "2", *args, "--group", "lab")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["count"] == 1
    done = netpeer.run("call", at(ready), "pings", "--json")
    assert json.loads(done.stdout) == {"result": [[[2], {}]]}


def test_daemon_default_name_is_the_first_module_and_pid(netpeer: Runner) -> None:
    daemon = netpeer.spawn("run", SERVICE, "--port", "0", *STATIC, "--json")
    ready = daemon.expect_json(lambda o: o.get("event") == "ready", timeout=20)
    assert ready["name"] == f"service-{daemon.pid}"


def test_script_that_loops_at_import_is_served_and_stopped_cleanly(netpeer: Runner) -> None:
    daemon = netpeer.spawn("run", str(APPS / "forever.py"), "--port", "0", *STATIC, "--json")
    looping = daemon.expect_json(lambda o: o.get("event") == "looping", timeout=20)
    done = netpeer.run("call", f"127.0.0.1:{looping['peer']}", "ping")
    assert (done.returncode, done.stdout.strip()) == (0, "pong"), done.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert any("interrupted (SIGTERM) while importing" in line for line in daemon.err)
    assert [o["event"] for o in daemon.json_lines()][-2:] == ["stopping", "stopped"]
