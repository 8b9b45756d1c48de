"""A plain script: no asyncio in sight, only the blocking wrapper."""

import json

from supervisor.bus.blocking import BlockingClient

with BlockingClient() as bus:
    sub = bus.subscribe("script.>")
    bus.serve("script.double", lambda msg: msg.data * 2)
    bus.publish("script.hello", {"n": 1})
    got = sub.get(timeout=10)
    doubled = bus.request("script.double", 21, timeout=10)
    print(json.dumps({"topic": got.topic, "data": got.data, "bot": got.bot, "doubled": doubled, "peers": bus.peers()}))
