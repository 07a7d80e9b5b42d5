"""The gateway-to-gateway leg's keys: a certificate and key per session, made from the
operating system's CSPRNG (``cryptography``'s EC key generation), never derived from the
uid or anything else a client sees. Each gateway makes its own; the client carries each
side's certificate to the other (metadata of req and update, see
:mod:`strato.stream.control.server`), so the two pin each other."""

from __future__ import annotations

from cryptography import x509

from strato.stream.control.certs import self_signed
from strato.stream.dataserver.base import TlsLeg
from strato.stream.model.errors import InvalidRequest

MAX_CERT_BYTES = 8 * 1024
LEG_DAYS = 366  # longer than any session lives idle; a session is not renewed in place


def new_identity() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for one session's leg. The name is a constant: the
    peer pins the certificate itself, not a name."""
    return self_signed(["strato-stream-leg"], LEG_DAYS)


def peer_certificate(pem: bytes) -> bytes:
    """A peer gateway's certificate as the client handed it over: one PEM certificate,
    bounded; InvalidRequest naming what is wrong otherwise."""
    if len(pem) > MAX_CERT_BYTES:
        raise InvalidRequest(f"the peer's leg certificate is over {MAX_CERT_BYTES} bytes")
    try:
        x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise InvalidRequest("the peer's leg certificate is not a PEM certificate") from None
    return pem


def leg(cert: bytes, key: bytes, peer: bytes, role: str) -> TlsLeg:
    # PROD: the peer (consumer) gateway dials this side's listeners: the server end.
    return TlsLeg(cert, key, peer, "server" if role == "PROD" else "client")
