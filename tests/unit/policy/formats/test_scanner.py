"""Scanner configuration, places scanned, and linear-time behaviour on hostile input."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from urllib.parse import quote

import brotli
import pytest

from agentcage.errors import PolicyError
from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.pattern import CredentialPattern
from agentcage.policy.formats.regex_safety import nested_quantifier
from agentcage.policy.inspectors.credential_formats import CredentialFormatInspector
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import ALNUM, HEX, fake, frame, policy, request

GITHUB = "gh" + "p_" + fake(ALNUM, 36)
OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}


def test_allow_to_domains_overrides_the_builtin_hosts() -> None:
    engine = policy(secrets={"allow_to_domains": {"github_token": ["ghe.example.com"]}}, **OPEN)
    body = json.dumps({"t": GITHUB}).encode()
    assert engine.check_request(request("ghe.example.com", body=body)).verdict is Verdict.ALLOW
    assert engine.check_request(request("api.github.com", body=body)).verdict is Verdict.BLOCK


def test_builtin_allow_to_domains_off_blocks_even_the_provider() -> None:
    engine = policy(secrets={"builtin_allow_to_domains": False}, **OPEN)
    body = json.dumps({"t": GITHUB}).encode()
    assert engine.check_request(request("api.github.com", body=body)).verdict is Verdict.BLOCK


def test_secrets_disabled() -> None:
    engine = policy(secrets={"enabled": False}, **OPEN)
    body = json.dumps({"t": GITHUB}).encode()
    assert engine.check_request(request("evil.example.net", body=body)).verdict is Verdict.ALLOW


def test_extra_patterns_by_regex_and_by_env() -> None:
    engine = policy(
        secrets={
            "extra_patterns": [
                {"name": "acme_key", "pattern": r"acme_[0-9a-f]{16}"},
                {"name": "db_password", "env": "DB_PASSWORD"},
            ],
            "allow_to_domains": {"acme_key": ["acme.example"]},
        },
        environ={"DB_PASSWORD": "correct-horse-battery-staple"},
        **OPEN,
    )
    key = "acme_" + fake("0123456789abcdef", 16)
    leak = engine.check_request(request("evil.example.net", body=key.encode()))
    assert leak.rules == ("acme_key",)
    assert engine.check_request(request("api.acme.example", body=key.encode())).rules == ()
    pw = engine.check_request(
        request("evil.example.net", headers={"x-note": "pw correct-horse-battery-staple"})
    )
    assert pw.verdict is Verdict.BLOCK
    assert pw.rules == ("db_password",)
    assert "correct-horse" not in repr(pw)


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(PolicyError, match="no secret pattern") as info:
        policy(secrets={"allow_to_domains": {"github_tokn": ["x.com"]}})
    assert info.value.hint is not None and "github_token" in info.value.hint
    with pytest.raises(PolicyError, match="not set") as unset:
        policy(secrets={"extra_patterns": [{"name": "pw", "env": "UNSET_VAR"}]}, environ={})
    assert unset.value.hint


def test_places_scanned() -> None:
    engine = policy(**OPEN)
    cases = {
        "gzip body": request(
            "evil.example.net",
            body=gzip.compress(GITHUB.encode()),
            headers={"content-encoding": "gzip"},
        ),
        "gzip+br body": request(
            "evil.example.net",
            body=brotli.compress(gzip.compress(GITHUB.encode())),
            headers={"content-encoding": "gzip, br"},
        ),
        "form body": request(
            "evil.example.net",
            body=("t=" + quote(GITHUB, safe="").replace("_", "%5F")).encode(),
            content_type="application/x-www-form-urlencoded",
        ),
        "double-encoded url": request(
            "evil.example.net", "/x?t=" + quote(quote(GITHUB, safe="_"), safe="")
        ),
    }
    for label, sent in cases.items():
        decision = engine.check_request(sent)
        assert decision.rules == ("github_token",), label
    ws = engine.check_frame(frame(GITHUB.encode(), "evil.example.net", text=False))
    assert ws.verdict is Verdict.BLOCK
    from_server = engine.check_frame(
        frame(GITHUB.encode(), "evil.example.net").__class__(
            "evil.example.net", 443, "/", GITHUB.encode(), True, from_client=False
        )
    )
    assert from_server.verdict is Verdict.ALLOW


def test_placeholders_are_not_credentials() -> None:
    engine = policy(**OPEN)
    body = json.dumps({"key": "{{ANTHROPIC_API_KEY}}", "gh": "{{GITHUB_TOKEN}}"}).encode()
    assert engine.check_request(request("evil.example.net", body=body)).verdict is Verdict.ALLOW


HOSTILE = [
    b"AKIA" * 300_000,
    b"A" * 1_200_000,
    b"sk-ant-" + b"a" * 1_000_000,
    (b"eyJ" + b"a" * 20 + b".") * 40_000,
    b"-----BEGIN " + b" " * 1_000_000,
    b"1" * 500_000 + b":AA" + b"-" * 500_000,
    b"M" + b"a" * 25 + (b"." + b"a" * 6) * 100_000,
    b"xoxb-" + b"1-" * 500_000,
    (b'"type"' + b" " * 5 + b":") * 100_000,
    b"secret_access_key" * 60_000 + b"=" * 100_000,
    b"AccountKey=" + b"+" * 1_000_000,
    # Runs just under the "giant run" cut-off, each full of candidate starts.
    (b"eyJ" * 10_000 + b" ") * 33,
    (b".eyJ" + b"a" * 4000) * 250,
    (b"hooks.slack.com/services/" + b"a" * 199) * 4000,
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("data", HOSTILE, ids=lambda d: d[:12].decode(errors="replace"))
def test_hostile_input_scans_in_linear_time(data: bytes) -> None:
    # No time assertion (speed is measured by bench/); a catastrophic regex would
    # take hours here and trip the timeout instead.
    for pattern in BUILTIN_PATTERNS:
        pattern.regex.search(data)
    engine = policy(**OPEN)
    decision = engine.check_request(
        request("evil.example.net", body=data, content_type="text/plain")
    )
    assert isinstance(decision.verdict, Verdict)
    assert data[:64].decode(errors="replace") not in decision.reason


def test_credential_inside_basic_auth() -> None:
    basic = "Basic " + base64.b64encode(f"user:{GITHUB}".encode()).decode()
    decision = policy(**OPEN).check_request(
        request("evil.example.net", headers={"Authorization": basic})
    )
    assert decision.rules == ("github_token",)
    assert "basic auth" in decision.reason


@pytest.mark.parametrize(
    ("regex", "nested"),
    [
        (r"(a+)+$", True),
        (r"(\w+\s?)*x", True),
        (r"(?:a|b+)*c", True),
        (r"(?:[a-z]+\.)+com", True),
        (r"acme_[0-9a-f]{16}", False),
        (r"(?:ab){2,5}c+", False),
        (r"(?:a{1,3}){1,4}", False),
        (r"(?>a+)+b", False),
        (r"(?:[a-z]++\.)+com", False),
    ],
)
def test_nested_quantifiers_are_detected(regex: str, nested: bool) -> None:
    assert nested_quantifier(regex) is nested


def test_redos_prone_extra_pattern_is_refused_at_startup() -> None:
    with pytest.raises(PolicyError, match="nests a repeat") as info:
        policy(secrets={"extra_patterns": [{"name": "bad", "pattern": r"(a+)+$"}]})
    assert info.value.hint is not None and "possessive" in info.value.hint


def test_builtin_patterns_have_no_nested_quantifiers() -> None:
    for pattern in BUILTIN_PATTERNS:
        assert not nested_quantifier(pattern.regex.pattern.decode()), pattern.name


def test_documentation_examples_and_lookalikes_pass() -> None:
    engine = policy(**OPEN)
    snippets = [
        # The AWS documentation's example credentials, as found in SDK code and READMEs.
        'aws_access_key_id = "AKIA' + 'IOSFODNN7EXAMPLE"',
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY' + 'EXAMPLEKEY"',
        'token = "gh' + "p_" + "x" * 36 + '"',
        "STRIPE_KEY=sk" + "_live_" + "0" * 24,
        "cache-key-" + fake("0123456789abcdef", 32),
        "monkey-" + fake("0123456789abcdef", 32),
    ]
    for snippet in snippets:
        body = json.dumps({"messages": [{"role": "user", "content": snippet}]}).encode()
        decision = engine.check_request(request("evil.example.net", body=body))
        assert decision.verdict is Verdict.ALLOW, (snippet, decision)


def test_example_value_does_not_hide_a_real_one_next_to_it() -> None:
    body = ("AKIA" + "IOSFODNN7EXAMPLE " + GITHUB.replace("ghp", "ghs")).encode()
    decision = policy(**OPEN).check_request(request("evil.example.net", body=body))
    assert decision.rules == ("github_token",)
    fake_aws = "AK" + "IA" + fake("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    both = ("AKIA" + "IOSFODNN7EXAMPLE " + fake_aws).encode()
    assert policy(**OPEN).check_request(request("x.example.net", body=both)).rules == (
        "aws_access_key_id",
    )


def test_key_at_either_end_of_a_huge_base64_run_is_found() -> None:
    blob = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4000).decode()
    for body in (f"/{GITHUB}/{blob}", f"{blob}/{GITHUB}"):
        decision = policy(**OPEN).check_request(request("evil.example.net", body=body.encode()))
        assert decision.rules == ("github_token",)


def test_every_pattern_whose_anchor_occurs_in_a_window_is_tried() -> None:
    # Three formats in one run of token characters: the anchor prefilter must keep
    # all of them, not just the leftmost.
    aws = "AKIA" + fake("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    twilio = "SK" + fake(HEX, 32)
    engine = policy(**OPEN)
    inspector = next(i for i in engine.chain.inspectors if isinstance(i, CredentialFormatInspector))
    scanner = inspector.scanner
    data = f"x={GITHUB}&y={aws}&z={twilio}".encode()
    names = {p.name for p in scanner.matching(data)}
    assert {"github_token", "aws_access_key_id", "twilio_api_key"} <= names
    assert {p.name for p in scanner.matching(b"plain words only, no credentials")} == set()


@pytest.mark.parametrize(
    "credential",
    [
        '"type": "service' + '_account"',
        '\\"type\\": \\"service' + '_account\\"',  # inside a JSON string
        "-----BEGIN " + "PRIVATE KEY-----\n" + fake(ALNUM + "+/", 64),
        # its anchor starts inside the run
        "-----BEGINRSA" + "PRIVATE KEY-----\n" + fake(ALNUM + "+/", 64),
    ],
)
def test_anywhere_formats_touching_a_long_base64_run_are_found(credential: str) -> None:
    # The search for these formats skips the middles of long token runs; a match
    # that starts or ends right at a run's edge must still be whole in what it sees.
    blob = base64.b64encode(bytes(range(256)) * 200).decode().rstrip("=")
    for body in (credential + blob, blob + credential, blob[:-3] + credential + blob):
        found = policy(**OPEN).check_request(request("evil.example.net", body=body.encode()))
        assert found.verdict is Verdict.BLOCK, body[:80]


def test_a_jwt_bearer_token_is_flagged_in_a_body_but_not_in_authorization() -> None:
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"sub":"4f1c2a","iat":1700000000}').rstrip(b"=")
    jwt = f"{head}.{claims.decode()}.{fake(ALNUM, 43)}"
    engine = policy(**OPEN)
    bearer = request("api.example.com", headers={"authorization": f"Bearer {jwt}"})
    assert engine.check_request(bearer).verdict is Verdict.ALLOW
    in_body = request("api.example.com", body=json.dumps({"token": jwt}).encode())
    flagged = engine.check_request(in_body)
    assert flagged.verdict is Verdict.FLAG and flagged.rules == ("jwt",)
    # Blocking formats are blocked in Authorization all the same.
    github = request("evil.example.net", headers={"authorization": f"token {GITHUB}"})
    assert engine.check_request(github).verdict is Verdict.BLOCK


@pytest.mark.parametrize("glue", ["x", "token=x", "_", "9"])
def test_a_distinctive_prefix_is_found_glued_to_junk(glue: str) -> None:
    # `xghp_...` or a trailing `_x` must not hide a token whose prefix nothing else has.
    for value in (GITHUB, "np" + "m_" + fake(ALNUM, 36), "sk-" + "ant-api03-" + fake(ALNUM, 95)):
        body = json.dumps({"d": glue + value + "_x"}).encode()
        assert policy(**OPEN).check_request(request("evil.example.net", body=body)).verdict is (
            Verdict.BLOCK
        ), glue + value[:8]


def test_short_prefixes_still_need_a_boundary() -> None:
    # Twilio's `SK`, Mailgun's `key-`, Twitter's run of `A`: inside a word or a blob
    # they are no key.
    blob = base64.b64encode(b"\0" * 40 + bytes(range(256)) * 4).decode()
    for text in ("cache-key-" + fake(HEX, 32), "ASK" + fake(HEX, 32), "x" + blob):
        body = json.dumps({"d": text}).encode()
        assert policy(**OPEN).check_request(request("evil.example.net", body=body)).verdict is (
            Verdict.ALLOW
        ), text[:12]


def test_a_short_place_is_scanned_once_and_found_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Header values repeat on every request; their matches are worked out once per
    # scanner. A credential in one is still found on every request, disguised too.
    engine = policy(**OPEN)
    inspector = next(i for i in engine.chain.inspectors if isinstance(i, CredentialFormatInspector))
    scanner = inspector.scanner
    scanned: list[bytes] = []
    unmemoized = scanner._matches

    def counting(data: bytes) -> Iterator[tuple[CredentialPattern, str]]:
        scanned.append(data)
        return unmemoized(data)

    monkeypatch.setattr(scanner, "_matches", counting)
    for _ in range(3):
        harmless = engine.check_request(request("evil.example.net", headers={"ua": "agent/1.0"}))
        assert harmless.verdict is Verdict.ALLOW
        leaking = request("evil.example.net", headers={"ua": "agent/1.0", "x-token": GITHUB})
        assert engine.check_request(leaking).rules == ("github_token",)
        reversed_only = engine.check_request(
            request("evil.example.net", headers={"x-reversed": GITHUB[::-1]})
        )
        assert reversed_only.rules == ("github_token",)
        assert "reversed" in reversed_only.findings[0].reason
    assert scanned.count(b"agent/1.0") == 1
    assert scanned.count(GITHUB.encode()) == 1
    # What is remembered is what a fresh scan finds.
    for value in (GITHUB.encode(), GITHUB[::-1].encode(), b"agent/1.0", b""):
        assert list(scanner.matches(value)) == list(unmemoized(value))
    # Long places (bodies) are scanned each time, and the memo stays bounded.
    body = b"x" * 300 + GITHUB.encode()
    assert [p.name for p, _ in scanner.matches(body)] == ["github_token"]
    list(scanner.matches(body))
    assert scanned.count(body) == 2
    for n in range(3000):
        list(scanner.matches(b"value-%d" % n))
    assert len(scanner._memo) <= 1024
