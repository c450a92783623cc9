"""Programs that ignore proxy settings get the explicit path's inspection (docs/transparent.md).

`transparent_probe.py` runs the real `agentcage dns run --steer-to` and `agentcage proxy
run --transparent` with curl, Node's fetch(), Python's urllib and a WebSocket client
inside a fresh network and mount namespace; these tests read its report.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.proxy.transparent_probe import PLACEHOLDER, REAL_KEY, STEER
from tests.support.netns import probe_report

pytestmark = pytest.mark.integration
PROBE = "tests.integration.proxy.transparent_probe"
Report = dict[str, Any]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("transparent") / "report.json"
    data: Report = probe_report(PROBE, out, timeout=240)
    assert data["proxy_exit"] == 0, data["proxy_stderr"]
    return data


def received(report: Report, path: str) -> dict[str, Any]:
    found = [r for r in report["received"] if r["path"] == path]
    assert len(found) == 1, report["received"]
    return found[0]  # type: ignore[no-any-return]


def audit_for(report: Report, path: str) -> list[dict[str, Any]]:
    return [line for line in report["audit"] if line.get("path") == path]


def test_dns_steers_allowed_names_to_the_proxy(report: Report) -> None:
    assert report["dns"]["a"] == [STEER]
    assert report["dns"]["aaaa"] == ["NOERROR", []]  # no real address leaks via AAAA
    assert report["dns"]["unlisted"][1] != [STEER]  # sinkholed, as before
    steered = [r for r in report["dns_audit"] if r.get("extra", {}).get("steered")]
    assert steered and steered[0]["extra"]["steered"] == STEER


@pytest.mark.parametrize("client", ["curl", "node", "urllib"])
def test_no_proxy_client_gets_injection_and_redaction(report: Report, client: str) -> None:
    answer = report[{"curl": "curl_https"}.get(client, client)]
    assert answer["status"] == 200, answer
    # The upstream reflected the real key; the agent sees only the placeholder.
    assert answer["body"] == f"k={PLACEHOLDER}"
    arrived = received(report, f"/reflect/{client}")
    assert arrived["key"] == REAL_KEY
    assert arrived["body"] == f"k={REAL_KEY}"
    assert arrived["scheme"] == "https"
    lines = audit_for(report, f"/reflect/{client}")
    assert [(line["verdict"], line["host"], line["port"]) for line in lines][:1] == [
        ("allow", "api.anthropic.com", 443)
    ]


def test_plain_http_client_is_served_on_port_80(report: Report) -> None:
    assert report["curl_http"]["status"] == 200
    arrived = received(report, "/plain")
    assert (arrived["scheme"], arrived["host"]) == ("http", "example.com")
    assert audit_for(report, "/plain")[0]["port"] == 80


def test_websocket_messages_are_inspected(report: Report) -> None:
    assert report["websocket"] == {"accepted": True, "echo": [f"token={PLACEHOLDER}"]}
    assert received(report, "/ws")["ws"] == [f"token={REAL_KEY}"]
    kinds = {line["kind"] for line in audit_for(report, "/ws")}
    assert "websocket" in kinds


def test_unlisted_name_does_not_resolve_to_the_proxy(report: Report) -> None:
    assert report["unlisted_name"]["exit"] == 7  # sinkholed: nothing to connect to
    assert not [r for r in report["received"] if r["path"] == "/unlisted"]


def test_unlisted_name_dialled_at_the_proxy_is_refused(report: Report) -> None:
    answer = report["unlisted_direct"]
    assert answer["status"] == 403
    assert json.loads(answer["body"])["inspector"] == "domain"
    assert audit_for(report, "/direct")[0]["verdict"] == "block"


def test_sni_host_mismatch_is_refused(report: Report) -> None:
    answer = report["sni_host_mismatch"]
    assert answer["status"] == 403
    body = json.loads(answer["body"])
    assert body["inspector"] == "host-agreement"
    assert "TLS SNI 'example.com'" in body["reason"]
    assert not [r for r in report["received"] if r["path"] == "/mismatch"]


def test_host_naming_another_port_is_refused(report: Report) -> None:
    answer = report["host_port_mismatch"]
    assert answer["status"] == 403
    assert json.loads(answer["body"])["reason"] == (
        "the Host names port 8443, but the connection came in on 443"
    )


def test_bare_ip_tls_is_refused_and_audited(report: Report) -> None:
    assert report["bare_ip_tls"]["exit"] == 35  # TLS handshake failed: no certificate
    refusals = [
        line
        for line in report["audit"]
        if line["kind"] == "connection" and "without a server name" in line["reason"]
    ]
    assert len(refusals) == 1
    assert (refusals[0]["inspector"], refusals[0]["host"], refusals[0]["port"]) == (
        "transparent",
        STEER,
        443,
    )


def test_plain_text_on_the_tls_port_is_closed_and_audited(report: Report) -> None:
    assert report["plain_on_tls_port"] == {"connected": True, "received": ""}
    assert any("plain text on port 443" in line["reason"] for line in report["audit"])


def test_connect_on_a_transparent_listener_is_refused(report: Report) -> None:
    assert "CONNECT tunnel failed, response 403" in report["connect_on_transparent"]["err"]
    assert any(
        line["method"] == "CONNECT" and line["inspector"] == "transparent"
        for line in report["audit"]
    )


def test_port_rule_opens_a_port_for_its_host_only(report: Report) -> None:
    opened = report["port_rule_open"]
    # Forwarded: the fake upstream has nothing on 8443, so the proxy's 502 comes back.
    assert opened["status"] == 502
    assert json.loads(opened["body"])["inspector"] == "upstream"
    closed = report["port_rule_closed"]
    assert closed["status"] == 403
    assert "port 8443 is not open for api.anthropic.com" in json.loads(closed["body"])["reason"]


def test_other_tcp_ports_are_refused(report: Report) -> None:
    assert report["tcp_5432"] == {"connected": False, "error": "ConnectionRefusedError"}


def test_cage_verify_checks_pass_against_a_working_transparent_path(report: Report) -> None:
    verify = report["verify"]
    assert len(verify) == 6
    assert "UDP to port 123 unanswered" in verify
    failed = {name: detail for name, (passed, detail) in verify.items() if not passed}
    assert not failed


def test_an_opaque_port_relays_bytes_uninspected_and_audits_them(report: Report) -> None:
    assert report["opaque"] == {"answer": "echo:SSH-2.0-probe\r\n"}
    lines = [
        line
        for line in report["audit"]
        if line["inspector"] == "opaque" and line["client"] != report["opaque_explicit"]["client"]
    ]
    assert [line["extra"]["phase"] for line in lines] == ["open", "close"]
    opened, closed = lines
    assert (opened["verdict"], opened["host"], opened["port"]) == ("flag", "example.com", 2222)
    assert "uninspected" in opened["reason"]
    assert (closed["bytes_out"], closed["bytes_in"]) == (15, 20)
    assert closed["duration_ms"] > 0


def test_an_opaque_port_is_reached_through_the_explicit_proxy_too(report: Report) -> None:
    """CONNECT example.com:2222 (the opaque port's host and port): relayed and audited."""
    explicit = report["opaque_explicit"]
    assert explicit["connect"] == "HTTP/1.1 200 Connection established", explicit
    assert explicit["answer"] == "echo:SSH-2.0-explicit\r\n"
    lines = [
        line
        for line in report["audit"]
        if line["inspector"] == "opaque" and line["client"] == report["opaque_explicit"]["client"]
    ]
    assert [line["extra"]["phase"] for line in lines] == ["open", "close"]
    assert (lines[0]["host"], lines[0]["port"], lines[0]["verdict"]) == (
        "example.com",
        2222,
        "flag",
    )
    assert (lines[1]["bytes_out"], lines[1]["bytes_in"]) == (18, 23)


def test_another_host_on_an_opaque_port_is_a_refused_raw_stream(report: Report) -> None:
    assert "answer" not in report["opaque_other_host"] or not report["opaque_other_host"]["answer"]
    refused = [
        line
        for line in report["audit"]
        if line["kind"] == "connection" and line["inspector"] == "protocol"
    ]
    assert [(line["host"], line["port"]) for line in refused] == [("anthropic.com", 2222)]
