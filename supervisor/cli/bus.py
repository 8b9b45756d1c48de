"""`supctl bus pub|sub|request|peers`: the bus from a shell, as supctl:N with a token from the master."""

from __future__ import annotations

import argparse

import msgspec

from ..core.errors import BusError


def _payload(text: str) -> object:
    import json

    try:
        return json.loads(text)
    except ValueError as e:
        raise BusError(f"the message must be JSON: {e}") from None


def _line(obj: object) -> str:
    return msgspec.json.encode(obj).decode()


def run(args: argparse.Namespace, path: str, token: str) -> int:
    """`token` is the master's answer to BusTokenRequest: good for this one connection (its own never leaves it)."""
    from ..bus.blocking import BlockingClient

    with BlockingClient(path, token) as client:
        if args.bus_verb == "pub":
            client.publish(args.topic, _payload(args.json_msg), retain=args.retain)
            client.flush()
        elif args.bus_verb == "request":
            print(_line(client.request(args.topic, _payload(args.json_msg), timeout=args.timeout)))
        elif args.bus_verb == "peers":
            for peer in client.peers():
                print(f"{peer[0]}:{peer[1]}" + (f" on {peer.host}" if peer.host else ""))
        else:
            for msg in client.subscribe(args.pattern):
                print(_line({"topic": msg.topic, "bot": msg.bot, "instance": msg.instance, "retained": msg.retained,
                             "data": msg.data, **({"host": msg.host} if msg.host else {})}), flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    bus = sub.add_parser("bus", help="publish, subscribe, request and list peers on the master's bus", parents=parents)
    verbs = bus.add_subparsers(dest="bus_verb", required=True, metavar="BUS_VERB")
    pub = verbs.add_parser("pub", help="publish a JSON message")
    pub.add_argument("topic", help="a topic like prices.btc")
    pub.add_argument("json_msg", metavar="JSON", help="the message, as JSON")
    pub.add_argument("--retain", action="store_true", help="keep it as the topic's last value for new subscribers")
    sub_ = verbs.add_parser("sub", help="print messages on PATTERN as JSON lines (wildcards * and >)")
    sub_.add_argument("pattern", help="a topic pattern: * matches one token, > the rest")
    req = verbs.add_parser("request", help="send a request and print the reply")
    req.add_argument("topic", help="the topic a bot serves")
    req.add_argument("json_msg", metavar="JSON", help="the request, as JSON (null for none)")
    req.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the reply (default 5)")
    verbs.add_parser("peers", help="connected bots and instances")
    return bus
