"""Event classes shared by the bridge test's processes (stable names on the classes)."""

import net


class Reading(net.Event, name="test.reading"):
    sensor: str
    value: float


class Temperature(Reading, name="test.temperature"):
    unit: str = "C"
