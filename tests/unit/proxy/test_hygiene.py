"""Message hygiene: what a request may carry for every hop to read it alike."""

from __future__ import annotations

import pytest

from agentcage.proxy.hygiene import (
    REGISTERED_METHODS,
    Malformed,
    check_fields,
    check_method,
    check_target,
)


@pytest.mark.parametrize("method", sorted(REGISTERED_METHODS))
def test_registered_methods_pass(method: str) -> None:
    check_method(method)


@pytest.mark.parametrize("method", ["get", "Post", "FOO", "SK-ANT-API03-X", "", "G T"])
def test_other_methods_are_malformed(method: str) -> None:
    with pytest.raises(Malformed) as caught:
        check_method(method)
    if method.upper() not in REGISTERED_METHODS and method:
        assert method not in str(caught.value)  # agent-chosen bytes, maybe a secret


GOOD = [(b"host", b"example.com"), (b"x-t", b"a\tb \x80\xff"), (b"content-length", b"3")]


def test_clean_fields_pass() -> None:
    check_fields(GOOD, http2=False)
    check_fields(GOOD, http2=True)
    check_fields([(b"te", b"trailers")], http2=True)
    check_fields([(b"Transfer-Encoding", b"Chunked")], http2=False)


@pytest.mark.parametrize(
    "fields",
    [
        [(b"x-t", b"a\r\nb")],
        [(b"x-t", b"a\rb")],
        [(b"x-t", b"a\nb")],
        [(b"x-t", b"a\x00b")],
        [(b"x-t", b"a\x1bb")],
        [(b"x-t", b"\x7f")],
        [(b"x t", b"v")],
        [(b"host ", b"v")],
        [(b"", b"v")],
        [(b":path", b"/")],
        [(b"x-\xff", b"v")],
        [(b"content-length", b"1"), (b"transfer-encoding", b"chunked")],
        [(b"transfer-encoding", b"gzip, chunked")],
        [(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", b"1"), (b"content-length", b"1")],
        [(b"content-length", b"+1")],
    ],
)
def test_malformed_fields(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(Malformed):
        check_fields(fields, http2=False)


@pytest.mark.parametrize(
    "fields",
    [
        [(b"X-Upper", b"v")],
        [(b"connection", b"close")],
        [(b"keep-alive", b"5")],
        [(b"proxy-connection", b"keep-alive")],
        [(b"transfer-encoding", b"chunked")],
        [(b"upgrade", b"websocket")],
        [(b"te", b"gzip")],
    ],
)
def test_http2_only_rules(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(Malformed):
        check_fields(fields, http2=True)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/"), ("GET", "/a?b=c"), ("OPTIONS", "*"), ("GET", "//a/b")]
)
def test_origin_form_targets_pass(method: str, path: str) -> None:
    check_target(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "https://a.example/"), ("GET", "a.example:443"), ("GET", "*"), ("GET", "")],
)
def test_other_targets_are_malformed(method: str, path: str) -> None:
    with pytest.raises(Malformed):
        check_target(method, path)
