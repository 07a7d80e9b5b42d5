"""A ZeroMQ producer or consumer, the way SciStream's demos stream: run as a script inside a
host's namespace (``python zmq_peer.py pub ADDRESS COUNT`` / ``sub ADDRESS``).

The producer binds an XPUB socket (a PUB that also hears subscriptions), waits until a
subscriber has joined, so that no message is published into the void, then sends COUNT
messages ``[sequence, sha256, payload]`` of varying sizes and an empty end message. The
consumer connects a SUB socket, checks each message against its digest and its sequence,
and prints one JSON line: how many came, their bytes, whether all were intact and in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import zmq

TIMEOUT_MS = 30_000


def pub(address: str, count: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)  # hold every message until it is sent: none dropped
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.bind(f"tcp://{address}")
    print(json.dumps({"bound": address}), flush=True)
    sock.recv()  # a subscription: the consumer is connected through the gateways
    for i in range(count):
        payload = os.urandom(1 + (i * 7919) % 200_000)
        sock.send_multipart([b"%d" % i, hashlib.sha256(payload).digest(), payload])
    sock.send_multipart([b"end", b"", b""])
    sock.setsockopt(zmq.LINGER, TIMEOUT_MS)
    sock.close()
    ctx.term()


def sub(address: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"tcp://{address}")
    seen, size, intact, ordered = 0, 0, True, True
    try:
        while True:
            seq, digest, payload = sock.recv_multipart()
            if seq == b"end":
                break
            intact &= hashlib.sha256(payload).digest() == digest
            ordered &= int(seq) == seen
            seen += 1
            size += len(payload)
        ended = True
    except zmq.Again:
        ended = False
    print(json.dumps({"received": seen, "bytes": size, "intact": intact, "in_order": ordered,
                      "ended": ended}))  # fmt: skip
    sock.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    if sys.argv[1] == "pub":
        pub(sys.argv[2], int(sys.argv[3]))
    else:
        sub(sys.argv[2])
