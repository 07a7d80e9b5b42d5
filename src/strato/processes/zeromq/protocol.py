"""The messages of the ZeroMQ transport: JSON, one object per request, bounded before
it is parsed.

A client (DEALER) sends one frame, a JSON object with ``op`` and ``rid`` (its request
id, echoed in the reply). Operations:

``processes``                         -> ``{"processes": [description, ...]}``
``describe``  ``process``             -> ``{"process": description}``
``execute``   ``process, inputs[, subscribe]`` -> ``{"job": status}`` (the acknowledgement:
                                        the job exists, kept by the server's job engine)
``status``    ``job``                 -> ``{"job": status}``
``subscribe`` ``job``                 -> ``{"job": status}``, then pushed events
                                        ``{"event": "status", "job": status}`` on change
                                        and at the end
``results``   ``job[, inline]``       -> ``{"results": {...}, "files": [[output, name,
                                        type], ...]}`` followed by one frame of bytes per
                                        file (NetCDF results sent inline)
``cancel``    ``job``                 -> ``{"job": status}``
``release``   ``job``                 -> ``{"job": status}``: the results were taken; the
                                        job and its files are removed

Results are kept until released, so a client that lost its connection, or asks late,
still gets them. A refusal is ``{"rid", "ok": false, "error": {"code", "status",
"detail"}}``; every answer has ``"ok"``.
"""

from __future__ import annotations

from typing import Any

from strato import jsonio

# A request is one JSON frame; more, or a larger one, is refused before it is parsed.
MAX_REQUEST_FRAMES = 1
MAX_REQUEST_BYTES = 1 << 20
# libzmq drops a connection whose message exceeds this before buffering it whole: the
# bound on what a peer can make the server hold (a request past MAX_REQUEST_BYTES but
# under it is answered with an error).
MAX_MESSAGE_BYTES = 16 << 20
OPS = ("processes", "describe", "execute", "status", "subscribe", "results", "cancel", "release")


class BadRequest(ValueError):
    """A request that is not one; the text says why (sent back)."""


def encode(message: dict[str, Any]) -> bytes:
    return jsonio.dump_bytes(message)


def decode(frames: list[bytes]) -> dict[str, Any]:
    """The request in ``frames`` (those after the peer's routing id)."""
    if len(frames) != MAX_REQUEST_FRAMES:
        raise BadRequest(f"a request is {MAX_REQUEST_FRAMES} frame, not {len(frames)}")
    if len(frames[0]) > MAX_REQUEST_BYTES:
        raise BadRequest(f"a request is at most {MAX_REQUEST_BYTES} bytes")
    try:
        message = jsonio.loads(frames[0])
    except ValueError:
        raise BadRequest("a request is a JSON object; this is not JSON") from None
    if not isinstance(message, dict):
        raise BadRequest("a request is a JSON object")
    if message.get("op") not in OPS:
        raise BadRequest(f"op is one of {', '.join(OPS)}")
    if not isinstance(message.get("rid", ""), (str, int)):
        raise BadRequest("rid is a string or an integer")
    return message


def text(message: dict[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadRequest(f"{key} is a non-empty string")
    return value


def job_status(job: Any) -> dict[str, Any]:
    """A job record as the transport sends it."""
    return {
        "id": job.id,
        "process": job.process_id,
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
    }
