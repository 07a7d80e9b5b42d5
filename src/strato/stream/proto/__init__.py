"""Generated gRPC modules of strato.stream (scripts/gen-stream-proto.sh): SciStream's
``scistream.Control`` and strato's ``strato.stream.v1.Sessions``. Not edited by hand."""
