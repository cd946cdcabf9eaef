#!/usr/bin/env python3
"""Receive pushes without WebSocket: SubscribeService.Subscribe. Prints one JSON line per message."""
import argparse
import json
import sys

from pushwire_example import add_common_arguments, channel, metadata

from pushwire.v1 import subscribe_pb2, subscribe_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--topic", action="append", default=[], help="public topic (repeatable)")
    parser.add_argument("--uid", default="", help="also receive what a connection logged in as this user receives")
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages (default: run until interrupted)")
    args = parser.parse_args()

    with channel(args.target) as ch:
        stub = subscribe_pb2_grpc.SubscribeServiceStub(ch)
        stream = stub.Subscribe(subscribe_pb2.SubscribeRequest(pid=args.pid, topics=args.topic, uid=args.uid), metadata=metadata(args.key))
        # The node sends the response headers once every subscription is in place.
        stream.initial_metadata()
        print("subscribed", file=sys.stderr, flush=True)
        received = 0
        for msg in stream:
            print(json.dumps({"topic": msg.topic, "uid": msg.uid, "data": msg.data.decode(errors="replace"), "message_id": msg.message_id}), flush=True)
            received += 1
            if received == args.count:
                stream.cancel()
                break


if __name__ == "__main__":
    main()
