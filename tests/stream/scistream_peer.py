"""SciStream's user client (S2UC) and application controller, as a script built only from
SciStream's public proto: the stubs are generated here with grpc_tools from the proto
text below (the messages and field numbers SciStream publishes), nothing of strato's is
imported. Run inside a namespace by tests/stream/test_scistream_client.py.

    scistream_peer.py PROD_S2CS CONS_S2CS PROD_CERT CONS_CERT TOKEN APP_ADDRESS

It does what SciStream's `s2uc inbound-request` / `outbound-request` and `appctrl` do
together: both reqs with their hellos, then both updates; prints the session as one JSON
line, waits for a line on stdin, releases both sides and prints the releases' answers.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import threading
import uuid
from pathlib import Path

PROTO = """\
syntax = "proto3";
package scistream;
message Request { string uid = 1; string role = 2; int32 num_conn = 3; int32 rate = 4; }
message UpdateTargets { string uid = 1; repeated string remote_listeners = 2; string role = 3; }
message Release { string uid = 1; }
message Hello { string uid = 1; repeated string prod_listeners = 2; string role = 3; }
message Response { repeated string listeners = 1; repeated string prod_listeners = 2; }
message AppResponse { string message = 1; repeated string listeners = 2; }
service Control {
  rpc req (Request) returns (Response);
  rpc update (UpdateTargets) returns (Response);
  rpc release (Release) returns (Response);
  rpc hello (Hello) returns (AppResponse);
}
"""


def stubs(workdir: Path) -> tuple[object, object]:
    from grpc_tools import protoc

    (workdir / "scistream.proto").write_text(PROTO)
    code = protoc.main(
        [
            "protoc",
            f"-I{workdir}",
            f"--python_out={workdir}",
            f"--grpc_python_out={workdir}",
            str(workdir / "scistream.proto"),
        ]
    )
    if code:
        raise SystemExit(f"protoc failed: {code}")
    sys.path.insert(0, str(workdir))
    return importlib.import_module("scistream_pb2"), importlib.import_module("scistream_pb2_grpc")


def main() -> None:
    import grpc

    prod_addr, cons_addr, prod_cert, cons_cert, token, app = sys.argv[1:7]
    with tempfile.TemporaryDirectory() as tmp:
        pb, pb_grpc = stubs(Path(tmp))
        md = [("authorization", token)]  # bare, as SciStream's client sends it

        def control(address: str, cert: str) -> object:
            creds = grpc.ssl_channel_credentials(Path(cert).read_bytes())
            return pb_grpc.ControlStub(grpc.secure_channel(address, creds))  # type: ignore[attr-defined]

        prod, cons = control(prod_addr, prod_cert), control(cons_addr, cons_cert)
        uid = str(uuid.uuid1())
        answers: dict[str, object] = {}

        def req(name: str, stub: object, role: str) -> None:
            answers[name] = stub.req(  # type: ignore[attr-defined]
                pb.Request(uid=uid, role=role, num_conn=1, rate=10000),  # type: ignore[attr-defined]
                metadata=md,
                timeout=30,
            )

        waiting = [
            threading.Thread(target=req, args=("prod", prod, "PROD")),
            threading.Thread(target=req, args=("cons", cons, "CONS")),
        ]
        for t in waiting:
            t.start()
        # The applications' controllers: the producer names where its data comes from;
        # SciStream's consumer side says role PROD too.
        prod.hello(pb.Hello(uid=uid, prod_listeners=[app], role="PROD"), metadata=md, timeout=30)  # type: ignore[attr-defined]
        cons.hello(pb.Hello(uid=uid, prod_listeners=[], role="PROD"), metadata=md, timeout=30)  # type: ignore[attr-defined]
        for t in waiting:
            t.join(60)
        p, c = answers["prod"], answers["cons"]
        prod.update(  # type: ignore[attr-defined]
            pb.UpdateTargets(uid=uid, remote_listeners=list(p.prod_listeners), role="PROD"),  # type: ignore[attr-defined]
            metadata=md,
            timeout=30,
        )
        cons.update(  # type: ignore[attr-defined]
            pb.UpdateTargets(uid=uid, remote_listeners=list(p.listeners), role="CONS"),  # type: ignore[attr-defined]
            metadata=md,
            timeout=30,
        )
        print(
            json.dumps(
                {
                    "uid": uid,
                    "prod_listeners": list(p.listeners),  # type: ignore[attr-defined]
                    "prod_echo": list(p.prod_listeners),  # type: ignore[attr-defined]
                    "cons_listeners": list(c.listeners),  # type: ignore[attr-defined]
                }
            ),
            flush=True,
        )
        sys.stdin.readline()
        for stub in (prod, cons):
            stub.release(pb.Release(uid=uid), metadata=md, timeout=30)  # type: ignore[attr-defined]
        print(json.dumps({"released": uid}), flush=True)


if __name__ == "__main__":
    main()
