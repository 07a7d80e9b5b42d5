"""The control server (S2CS): SciStream's ``scistream.Control`` service and strato's
``strato.stream.v1.Sessions`` on one grpc.aio server."""
