"""Publishes typed events (net.Event) to whoever subscribed to their class."""

import os
import time

from _common import emit, exit_cleanly_on_sigterm
from shared_events import Reading, Temperature

import net

exit_cleanly_on_sigterm()
net.start()
emit(port=net.default_peer().port)
want = int(os.environ.get("SUBSCRIBERS", "1"))
while sum(len(v) for k, v in net.info()["subscriptions"].items() if k.startswith("bus:")) < want:
    time.sleep(0.01)
for i in range(5):
    net.publish(Temperature(sensor="remote", value=float(i), unit="K"))
net.publish(Reading(sensor="remote", value=99.0))
emit(published=6)
while True:
    time.sleep(1)
