"""Data servers: what forwards a session's streams on a gateway. One class per backend
(builtin, haproxy, stunnel) behind :class:`strato.stream.dataserver.base.DataServer`."""
