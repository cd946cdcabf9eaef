#!/usr/bin/env python3
"""Push one message: PushService.PushData. Prints the answer as JSON."""
import argparse
import json

from pushwire_example import add_common_arguments, channel, metadata

from pushwire.v1 import push_pb2, push_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--topic", default="", help="public topic (empty with --uid: every connection of the user)")
    parser.add_argument("--uid", default="", help="user (with --topic: the user's private topic)")
    parser.add_argument("--data", required=True, help="the payload, sent as UTF-8 bytes")
    args = parser.parse_args()

    with channel(args.target) as ch:
        stub = push_pb2_grpc.PushServiceStub(ch)
        reply = stub.PushData(
            push_pb2.PushDataRequest(pid=args.pid, topic=args.topic, uid=args.uid, data=args.data.encode()),
            metadata=metadata(args.key),
            timeout=10,
        )
    print(json.dumps({"message_id": reply.message_id, "node_id": reply.node_id, "duplicate": reply.duplicate}), flush=True)


if __name__ == "__main__":
    main()
