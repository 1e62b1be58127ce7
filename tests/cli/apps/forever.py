"""An app-net style script: registers, then loops forever at import time."""

import json
import time

import net


@net.connect()
def ping():
    return "pong"


print(json.dumps({"event": "looping", "peer": net.default_peer().port}), flush=True)
while True:
    time.sleep(0.05)
