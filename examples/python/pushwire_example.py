"""Shared bits of the examples: the generated modules on sys.path, the channel, the API key."""
import os
import sys

import grpc

# Where generate.sh wrote the modules (PUSHWIRE_PY_GEN overrides, e.g. for a temporary folder).
sys.path.insert(0, os.environ.get("PUSHWIRE_PY_GEN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")))


def channel(target):
    """A plaintext channel: put TLS in front of the node (or use grpc.secure_channel) outside a private network."""
    return grpc.insecure_channel(target)


def metadata(key):
    """The project's API key as gRPC metadata; none when the node runs an open API."""
    return [("authorization", f"Bearer {key}")] if key else []


def add_common_arguments(parser):
    parser.add_argument("--target", default="localhost:9912", help="the node's gRPC address (default localhost:9912)")
    parser.add_argument("--key", default=os.environ.get("PUSHWIRE_KEY", ""), help="API key (default $PUSHWIRE_KEY; none on an open API)")
    parser.add_argument("--pid", default="", help="project (default: the key's project, or \"default\")")
