"""The one ETag computation and HTTP date (strato.http.conditional)."""

from __future__ import annotations

from strato.http.conditional import http_date, make_etag, validators


def test_an_etag_is_a_quoted_digest_of_its_parts_and_only_of_them() -> None:
    etag = make_etag("fingerprint", "tas/0.0.0", "blosc-lz4:5")
    assert etag[0] == etag[-1] == '"'
    assert len(etag) == 26
    assert etag == make_etag("fingerprint", "tas/0.0.0", "blosc-lz4:5")
    # Parts are kept apart: moving text from one to the next is another entity.
    assert make_etag("ab", "c") != make_etag("a", "bc")
    assert make_etag("fingerprint", "tas/0.0.0", "zstd:1") != etag


def test_validators_carry_the_etag_and_the_http_date() -> None:
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    headers = validators('"x"', 86_400.0, "public, max-age=300")
    assert headers == {
        "ETag": '"x"',
        "Cache-Control": "public, max-age=300",
        "Last-Modified": "Fri, 02 Jan 1970 00:00:00 GMT",
    }
    assert "Last-Modified" not in validators('"x"', None, "no-cache")
