#!/usr/bin/env bash
# Regenerates strato.stream.proto's Python modules (messages, gRPC stubs and their typing
# stubs) from the .proto files beside them; the output is committed. Run from anywhere:
#   bash scripts/gen-stream-proto.sh      (needs the test extra: grpcio-tools, mypy-protobuf)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
# protoc finds its plugins (protoc-gen-mypy) on PATH: the venv's bin.
export PATH="$(dirname "$py"):$PATH"
out="$root/src/strato/stream/proto"
# -I the proto directory itself: the descriptors are named scistream.proto, as SciStream's
# own, so a client generated from SciStream's file can live in the same process.
"$py" -m grpc_tools.protoc -I "$out" \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  "$out/scistream.proto" "$out/sessions.proto"
# protoc writes `import x_pb2` (top level); the modules live in a package.
for f in "$out"/*_pb2_grpc.py "$out"/*_pb2_grpc.pyi; do
  sed -i -E 's/^import (scistream|sessions)_pb2 as /from strato.stream.proto import \1_pb2 as /; s/^import (scistream|sessions)_pb2$/from strato.stream.proto import \1_pb2/' "$f"
done
