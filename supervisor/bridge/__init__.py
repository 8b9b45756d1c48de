"""The bridge from a master's bus to NATS, so bots on several hosts share one bus (docs/fleet.md).

Only a master with `[bus.nats]` imports this package; nats-py is imported inside it, when it connects.
"""
