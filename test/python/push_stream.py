"""PushStream from Python stubs generated from proto/ (grpcio + grpcio-tools).

Usage: push_stream.py <out-dir> <grpc-address> <topic> <count> [<timeout-seconds>]
Generates the stubs into <out-dir>, sends <count> pushes to <topic> on one PushStream with an
invalid push (a topic with a space) in the middle, with a deadline of <timeout-seconds> if given
(grpcio sends it as grpc-timeout), and prints one JSON line per answer:
{"message_id", "node_id", "duplicate", "error_code", "error_message"}.
"""
import json
import os
import sys

import grpc
from grpc_tools import protoc

try:
    from importlib.resources import files

    WKT = str(files("grpc_tools") / "_proto")
except Exception:  # older Pythons / grpcio-tools
    import pkg_resources

    WKT = pkg_resources.resource_filename("grpc_tools", "_proto")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def generate(out):
    os.makedirs(out, exist_ok=True)
    files_ = ["pushwire/v1/push.proto", "google/api/annotations.proto", "google/api/http.proto", "google/rpc/status.proto"]
    args = [
        "protoc",
        "-I" + os.path.join(ROOT, "proto"),
        "-I" + os.path.join(ROOT, "third_party"),
        "-I" + WKT,
        "--python_out=" + out,
        "--grpc_python_out=" + out,
    ] + files_
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # No __init__.py: namespace packages, so the generated google/ merges with protobuf's google/.
    sys.path.insert(0, out)


def main():
    out, address, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else None
    generate(out)
    from pushwire.v1 import push_pb2, push_pb2_grpc

    def requests():
        for i in range(count):
            bad = i == count // 2
            yield push_pb2.PushDataRequest(topic="bad topic\n" if bad else topic, data=("py%d" % i).encode())

    with grpc.insecure_channel(address) as channel:
        stub = push_pb2_grpc.PushServiceStub(channel)
        for answer in stub.PushStream(requests(), timeout=timeout):
            print(json.dumps({
                "message_id": answer.message_id,
                "node_id": answer.node_id,
                "duplicate": answer.duplicate,
                "error_code": answer.error.code if answer.HasField("error") else 0,
                "error_message": answer.error.message if answer.HasField("error") else "",
            }))


if __name__ == "__main__":
    main()
