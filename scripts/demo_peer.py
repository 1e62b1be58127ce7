"""One peer of the demo. Configured only through NET_* variables, as users do."""

import logging
import os
import signal
import sys
import time

import net

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit through atexit: goodbyes sent
role = os.environ["DEMO_ROLE"]
logging.basicConfig(level=logging.INFO, format=f"[{role:>7}] log: %(message)s", stream=sys.stdout)
logging.getLogger("net.link").setLevel(logging.WARNING)


def say(text: str) -> None:
    print(f"[{role:>7}] {text}", flush=True)


if role == "sensor":

    @net.connect()
    def read_sensor(unit="C"):
        """Return the current temperature."""
        return {"value": 21.5 if unit == "C" else 70.7, "unit": unit}

    @net.event("temperature")
    def temperature(value, unit="C"):
        return (value,), {"unit": unit}

    say(f"serving on port {net.default_peer().port}: connection read_sensor, event temperature")
    while len(net.info()["subscriptions"].get("temperature", [])) < 2:
        time.sleep(0.05)
    say(f"subscribers: {net.info()['subscriptions']['temperature']}")
    for reading in (20.0, 20.5, 21.0):
        report = temperature.report(reading)
        say(
            f"broadcast temperature={reading}: delivered to {sorted(p.name for p in report.delivered)}"
        )
        time.sleep(0.3)
    while True:
        time.sleep(0.2)
else:

    @net.subscribe("temperature")
    def on_temperature(value, unit="C"):
        say(f"got temperature {value} {unit}")

    while not [p for p in net.peers() if p.name == "sensor"]:
        time.sleep(0.05)
    sensor = next(p for p in net.peers() if p.name == "sensor")
    say(f"found peer {sensor.name} at {sensor.address}")
    if role == "display":
        say(f"remote call read_sensor(unit='F') -> {sensor.read_sensor(unit='F')}")
        try:
            sensor.calibrate()
        except net.UnknownConnection as exc:
            say(f"remote call calibrate() -> {type(exc).__name__}: {exc}")
    while True:
        time.sleep(0.2)
