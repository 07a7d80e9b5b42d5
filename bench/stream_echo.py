"""An echo server for the streaming benchmarks, in a process of its own: every connection
is sent back what it sends, through a pipe with ``splice`` (the bytes never enter user
space, so the target costs next to no CPU), with its end of file passed on. Prints its
port on stdout, serves until its stdin ends. Standard library only.

    python bench/stream_echo.py [HOST]
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _echo(conn: socket.socket) -> None:
    r, w = os.pipe()
    try:
        fd = conn.fileno()
        while n := os.splice(fd, w, 1 << 20):
            while n:
                n -= os.splice(r, fd, n)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
        conn.close()


def main(host: str = "127.0.0.1") -> None:
    lsock = socket.socket()
    lsock.bind((host, 0))
    lsock.listen(1024)

    def accept() -> None:
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(lsock.getsockname()[1], flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(*sys.argv[1:2])
