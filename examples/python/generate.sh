#!/bin/sh
# Generates the Python modules for pushwire's protos into ./gen (or $1):
#   message classes (*_pb2.py) with the stock protoc (Debian: protobuf-compiler), for every proto in
#   proto/ and third_party/ (google.api and google.rpc are imported by the generated code, so they are
#   compiled too);
#   gRPC stubs (*_pb2_grpc.py) with grpc_tools (Debian: python3-grpc-tools; pip: grpcio-tools).
# With pip's grpcio-tools alone, `python3 -m grpc_tools.protoc` can write both (PROTOC="python3 -m grpc_tools.protoc").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/gen}
python=${PYTHON:-python3}
protoc=${PROTOC:-protoc}
mkdir -p "$out"
cd "$root"
# google/protobuf's well-known types come with the protobuf runtime: not generated again.
protos=$(find proto third_party -name '*.proto' -not -path 'third_party/google/protobuf/*' | sed -e 's#^proto/##' -e 's#^third_party/##' | sort)
services=$(grep -l '^service ' $(find proto -name '*.proto') | sed 's#^proto/##' | sort)
# shellcheck disable=SC2086 # word splitting of the file lists is intended
$protoc -I proto -I third_party --python_out="$out" $protos
# shellcheck disable=SC2086
"$python" -m grpc_tools.protoc -I proto -I third_party --grpc_python_out="$out" $services
echo "generated into $out"
