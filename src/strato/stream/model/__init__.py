"""The control server's model, free of gRPC: sessions, the port pool, validation of what
clients send, and the errors named as in SciStream's draft."""
