from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from agentcage.policy.scrubbing.forms import FormScrubber
from agentcage.policy.scrubbing.scrubber import ValueScrubber
from tests.unit.policy.helpers import policy

VALUE = "s3cr3t/val+ue=with\"odd'chars"
TOKEN = "{{API_KEY}}"


@pytest.mark.parametrize(
    ("encode", "expected"),
    [
        (lambda s: s, TOKEN),
        (lambda s: quote(s, safe=""), quote(TOKEN, safe="")),
        (lambda s: quote(s, safe="").lower(), None),  # lower-case hex digits
        (
            lambda s: base64.b64encode(s.encode()).decode(),
            base64.b64encode(TOKEN.encode()).decode(),
        ),
        (
            lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
            base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("="),
        ),
        (lambda s: json.dumps(s)[1:-1], TOKEN),
    ],
)
def test_every_form_is_replaced(encode: object, expected: str | None) -> None:
    scrubber = FormScrubber([(VALUE, TOKEN)])
    form = encode(VALUE)  # type: ignore[operator]
    out = scrubber.scrub(f"before {form} after".encode())
    assert form.encode() not in out
    if expected is not None:
        assert out == f"before {expected} after".encode()
    assert scrubber.scrub_text(f"x{form}y") == out.decode().replace("before ", "x").replace(
        " after", "y"
    )


def test_no_secret_means_identity() -> None:
    scrubber = FormScrubber([])
    data = b"nothing here"
    assert scrubber.scrub(data) is data
    assert FormScrubber([(VALUE, TOKEN)]).scrub(data) is data


def test_longer_value_wins_over_its_prefix() -> None:
    scrubber = FormScrubber([("abcdef", "{{SHORT}}"), ("abcdef123456", "{{LONG}}")])
    assert scrubber.scrub(b"abcdef123456 abcdef") == b"{{LONG}} {{SHORT}}"


def test_policy_scrub_uses_the_injected_values() -> None:
    engine = policy(
        {"API_KEY": VALUE},
        secret_injection=[{"env": "API_KEY", "inject_to": ["example.com"]}],
    )
    assert VALUE.encode() not in engine.scrub(f"echo: {VALUE}".encode())
    assert VALUE not in engine.scrub_text(f"echo: {VALUE}")


@pytest.mark.parametrize(
    "value",
    [VALUE, "pass word/with space", "short1", "sk-ant-api03-" + "Ab9x" * 20],
)
def test_value_scrubber_finds_every_form_behind_its_fast_check(value: str) -> None:
    # The value scrubber answers "nothing here" from one automaton pass; a form
    # that pass cannot see (a short value, `+` for a space, lower-case escapes)
    # must still be looked for.
    scrubber = ValueScrubber([(value, TOKEN)])
    forms = [
        value,
        quote(value, safe=""),
        quote(value, safe="").lower(),
        quote_plus(value, safe=""),
        base64.b64encode(value.encode()).decode(),
        base64.urlsafe_b64encode(value.encode()).decode().rstrip("="),
        json.dumps(value)[1:-1],
    ]
    for form in forms:
        body = f"some text before {form} and after".encode()
        assert form.encode() not in scrubber.scrub(body), form
    clean = b"a large body without the value " * 1000
    assert scrubber.scrub(clean) is clean
