"""The proxy's check of a message's field types lets through and refuses what mitmproxy's does."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections import abc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.utils import typecheck

from agentcage.proxy import message_checks

SAMPLES: list[Any] = [
    None,
    True,
    0,
    443,
    1.5,
    "github.com",
    b"GET",
    bytearray(b"x"),
    http.Headers(),
    [],
    (),
    {},
    object(),
]


@pytest.fixture(autouse=True)
def installed() -> None:
    message_checks.install()


def mitmproxy_says(name: str, value: Any, annotation: Any) -> str | None:
    try:
        typecheck.check_option_type(name, value, annotation)
    except TypeError as exc:
        return str(exc)
    return None


def ours_says(cls: type, values: dict[str, Any]) -> str | None:
    made = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(made, name, value)
    try:
        message_checks._checked(made)
    except TypeError as exc:
        return str(exc)
    return None


@given(st.data())
def test_each_field_refuses_what_mitmproxy_refuses_with_its_words(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from([http.RequestData, http.ResponseData]))
    fields = dataclasses.fields(cls)
    values = {field.name: data.draw(st.sampled_from(SAMPLES)) for field in fields}
    expected = next(
        (
            said
            for field in fields
            if (said := mitmproxy_says(field.name, values[field.name], field.type)) is not None
        ),
        None,
    )
    assert ours_says(cls, values) == expected


def test_a_message_of_the_wrong_type_is_still_refused_when_made() -> None:
    headers = http.Headers(host="github.com")
    args = (b"GET", b"https", b"", b"/", b"HTTP/1.1", headers, b"", None, 1.0, 2.0)
    assert http.Request("github.com", 443, *args).port == 443
    said = "Expected <class 'int'> for port, but got <class 'str'>."
    with pytest.raises(TypeError, match=re.escape(said)):
        http.Request("github.com", "443", *args)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="for status_code"):
        http.Response(b"HTTP/1.1", "200", b"OK", headers, b"", None, 1.0, 2.0)  # type: ignore[arg-type]
    # mitmproxy's float takes an int, and its `None`s are allowed where annotated
    assert http.Response(b"HTTP/1.1", 200, b"OK", headers, None, None, 1, None).timestamp_start == 1


def test_the_classes_each_annotation_accepts() -> None:
    assert message_checks.accepted(bytes) == (bytes,)
    assert message_checks.accepted(float | None) == (float, int, type(None))
    optional = typing.Optional[http.Headers]  # noqa: UP045  (the older spelling, on purpose)
    assert message_checks.accepted(optional) == (http.Headers, type(None))
    # forms mitmproxy checks another way are left to it
    for other in (
        typing.Any,
        abc.Sequence[str],
        typing.Sequence[str],
        tuple[int, int],
        typing.IO[bytes],
        typing.BinaryIO,
        str | typing.Sequence[str],
    ):
        assert message_checks.accepted(other) is None, other


def test_a_field_of_another_form_goes_to_mitmproxys_check() -> None:
    # made, not written as a class: this module's annotations are strings
    tagged = dataclasses.make_dataclass(
        "Tagged", [("tags", abc.Sequence[str])], bases=(http.MessageData,)
    )

    headers = http.Headers()
    base = (b"HTTP/1.1", headers, b"", None, 1.0, None)
    assert tagged(*base, ["a", "b"]).tags == ["a", "b"]
    with pytest.raises(TypeError, match=r"^Expected .* for tags"):
        tagged(*base, [1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="for http_version"):
        tagged("HTTP/1.1", *base[1:], ["a"])  # type: ignore[arg-type]
