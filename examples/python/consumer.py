#!/usr/bin/env python3
"""A backend consumer: BackendService.Connect. Prints each client event as a JSON line and, with
--reply, answers client requests (WebSocket code 7) through PushData with reply_to."""
import argparse
import json
import sys

from pushwire_example import add_common_arguments, channel, metadata

from pushwire.v1 import backend_pb2, backend_pb2_grpc, push_pb2, push_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--group", default="", help='consumer group (default "default"); consumers of one group share the events')
    parser.add_argument("--reply", action="store_true", help='answer each request with {"ok": true, "echo": <its data>}')
    parser.add_argument("--count", type=int, default=0, help="exit after this many events (default: run until interrupted)")
    args = parser.parse_args()

    with channel(args.target) as ch:
        events = backend_pb2_grpc.BackendServiceStub(ch).Connect(backend_pb2.ConnectRequest(pid=args.pid, group=args.group), metadata=metadata(args.key))
        push = push_pb2_grpc.PushServiceStub(ch)
        # Registered as a consumer once the node sends the response headers.
        events.initial_metadata()
        print("connected", file=sys.stderr, flush=True)
        seen = 0
        for e in events:
            kind = backend_pb2.ClientEventType.Name(e.type).removeprefix("CLIENT_EVENT_TYPE_").lower()
            data = e.data.decode(errors="replace")
            print(json.dumps({"type": kind, "pid": e.pid, "uid": e.uid, "cid": e.cid, "node_id": e.node_id, "request_id": e.request_id, "topic": e.topic, "data": data}), flush=True)
            if args.reply and e.type == backend_pb2.CLIENT_EVENT_TYPE_REQUEST:
                answer = json.dumps({"ok": True, "echo": json.loads(data) if data else None}).encode()
                push.PushData(push_pb2.PushDataRequest(pid=e.pid, cids=[e.cid], reply_to=e.request_id, data=answer), metadata=metadata(args.key), timeout=10)
            seen += 1
            if seen == args.count:
                events.cancel()
                break


if __name__ == "__main__":
    main()
