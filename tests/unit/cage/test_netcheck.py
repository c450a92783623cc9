"""The pure parts of `cage verify`'s network checks (cage/netcheck.py): routes, flow lines,
and which checks run where default deny gave the namespace a route (a microVM guest)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path

import pytest

from agentcage.cage import netcheck, netcheck_audit
from agentcage.cage.netcheck import default_gateways, routed_via
from agentcage.cage.netcheck_audit import audit_records, audited

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
# 10.213.0.35 and the subnet 10.213.0.0/24, as the kernel prints them (little-endian hex).
VIA_PROXY = HEADER + "eth0\t00000000\t2300D50A\t0003\t0\t0\t0\t00000000\n"
ON_LINK = HEADER + "eth0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"


def test_the_only_default_route_must_lead_to_the_proxy() -> None:
    assert default_gateways(VIA_PROXY) == ["10.213.0.35"]
    assert routed_via("10.213.0.35", VIA_PROXY) == (True, "default route via 10.213.0.35")
    assert routed_via("10.213.0.35", ON_LINK)[0] is False
    assert "none" in routed_via("10.213.0.35", ON_LINK)[1]
    two = VIA_PROXY + "eth0\t00000000\t0100D50A\t0003\t0\t0\t0\t00000000\n"
    assert routed_via("10.213.0.35", two)[0] is False


def test_a_refused_flow_counts_with_its_line_only() -> None:
    line = {"kind": "flow", "scheme": "tcp", "host": "10.213.0.35", "port": 22}
    text = json.dumps(line) + "\n" + '{"kind": "flow", "sch'  # the last line is being written
    records = audit_records(text)
    assert records == [line]
    passed, detail = audited("raw TCP to port 22 refused", "reset", records, "10.213.0.35")
    assert passed and detail == "reset; audited"
    passed, detail = audited("raw TCP to port 5432 refused", "reset", records, "10.213.0.35")
    assert not passed and "no `flow` line" in detail


def test_steered_the_namespace_must_route_via_the_proxy_and_end_flows_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def fake(name: str) -> object:
        return lambda *args: calls.append(name) or (True, name)

    for name in ("no_default_route", "routed_via", "gateway_unreachable", "tcp_refused"):
        monkeypatch.setattr(netcheck, name, fake(name))
    for name in ("sinkholed", "blocked_host", "direct_unlisted", "udp_unanswered"):
        monkeypatch.setattr(netcheck, name, fake(name))
    monkeypatch.setattr(netcheck, "unlisted_at_proxy", fake("unlisted_at_proxy"))
    rows = netcheck.run("10.0.2.2", None, "10.213.0.35", steered=True)
    assert rows[0]["name"] == "agent routes via the proxy"
    # The gateway: at the deny listener.
    assert [row["detail"] for row in rows[:2]] == ["routed_via", "tcp_refused"]
    rows = netcheck.run("10.0.2.2", None, "10.213.0.35")
    assert rows[0]["name"] == "no default route"
    assert [row["detail"] for row in rows[:2]] == ["no_default_route", "gateway_unreachable"]


def test_checks_run_at_once_and_report_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each check waits for all four to have started: run one after another, the first
    # would wait alone until the barrier's timeout broke it.
    started = threading.Barrier(4, timeout=30)

    def waiting(name: str) -> object:
        def check(*_args: object) -> tuple[bool, str]:
            started.wait()
            return True, name

        return check

    for name in ("no_default_route", "gateway_unreachable", "sinkholed", "blocked_host"):
        monkeypatch.setattr(netcheck, name, waiting(name))
    rows = netcheck.run("10.213.0.1", None)
    assert [row["detail"] for row in rows] == [
        "no_default_route",
        "gateway_unreachable",
        "sinkholed",
        "blocked_host",
    ]
    assert all(row["passed"] for row in rows)


class _UdpServer:
    """A UDP socket on loopback that answers each datagram, or writes the deny listener's
    `flow` line for it to `log` (and answers nothing), as the proxy's does."""

    def __init__(self, answer: bool, log: Path | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer, self.log = answer, log
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        data, peer = self.sock.recvfrom(512)
        if self.answer:
            self.sock.sendto(b"\x1c" + data[1:], peer)
        if self.log is not None:
            line = {"kind": "flow", "scheme": "udp", "host": "127.0.0.1", "port": self.port}
            with self.log.open("a") as handle:
                handle.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self.thread.join(5)
        self.sock.close()


def _udp_check(
    tmp_path: Path, answer: bool, line: bool, wait: float, earlier_line: bool = False
) -> tuple[tuple[bool, str], int]:
    """udp_unanswered against a loopback server; (its result, the server's port)."""
    log = tmp_path / "proxy.jsonl"
    server = _UdpServer(answer, log if line else None)
    earlier = {"kind": "flow", "scheme": "udp", "host": "127.0.0.1", "port": server.port}
    log.write_text(json.dumps(earlier) + "\n" if earlier_line else "")
    try:
        return netcheck.udp_unanswered("127.0.0.1", server.port, str(log), wait), server.port
    finally:
        server.close()


def test_udp_that_gets_an_answer_fails(tmp_path: Path) -> None:
    (passed, detail), _ = _udp_check(tmp_path, answer=True, line=False, wait=5)
    assert not passed and detail.endswith("/udp answered")


def test_udp_taken_by_the_deny_listener_ends_at_its_flow_line(tmp_path: Path) -> None:
    # A wait beyond any test's patience: only the line can end the check in time.
    result, port = _udp_check(tmp_path, answer=False, line=True, wait=3600)
    assert result == (True, f"127.0.0.1:{port}/udp: no answer; the proxy's deny listener took it")


def test_udp_without_a_line_concludes_by_the_timeout_and_says_so(tmp_path: Path) -> None:
    # A line written before the check began (an earlier verify's) is not this datagram's.
    (passed, detail), _ = _udp_check(tmp_path, False, line=False, wait=0.3, earlier_line=True)
    assert passed and detail.endswith("no answer in 0.3 s (timed out)")


def test_udp_refused_by_icmp_says_so() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    passed, detail = netcheck.udp_unanswered("127.0.0.1", port, None, wait=3600)
    assert passed and detail.endswith("(ICMP error)")


class _DnsServer:
    """A resolver on loopback port 53: `answers` maps names to IPv4 addresses; any other
    name gets NXDOMAIN. Answers use a compression pointer to the question, as dnsmasq's do."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.53", 53))
        self.answers = answers
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            labels, at = [], 12
            while query[at]:
                labels.append(query[at + 1 : at + 1 + query[at]].decode())
                at += 1 + query[at]
            question = query[12 : at + 5]
            address = self.answers.get(".".join(labels))
            flags = 0x8180 if address else 0x8183
            head = query[:2] + struct.pack(">HHHHH", flags, 1, 1 if address else 0, 0, 0)
            answer = b""
            if address:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4)
                answer += socket.inet_aton(address)
            self.sock.sendto(head + question + answer, peer)

    def close(self) -> None:
        self.sock.close()


def test_names_resolve_through_the_given_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        server = _DnsServer({netcheck.PROBE_NAME: netcheck.SINKHOLE, "github.com": "10.9.0.3"})
    except PermissionError:
        pytest.skip("binding port 53 needs root here")
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)  # restored afterwards
    try:
        netcheck.resolve_with("127.0.0.53")
        assert netcheck.sinkholed() == (
            True,
            f"{netcheck.PROBE_NAME} -> {netcheck.SINKHOLE}",
        )
        infos = socket.getaddrinfo("github.com", 443, 0, socket.SOCK_STREAM)
        assert [info[4] for info in infos] == [("10.9.0.3", 443)]
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("not-listed.example", 443)
        # Addresses are not names: nothing is asked.
        assert socket.getaddrinfo("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)
    finally:
        server.close()


def _flow_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tcp: dict[int, tuple[bool, str]],
    written: list[dict[str, object]],
) -> dict[str, tuple[object, object]]:
    """netcheck.run with the proxy at 127.0.0.1 and its log in `tmp_path`: each TCP flow
    check answers `tcp[port]`, the UDP one answers nothing (to 203.0.113.9), and the
    listener writes `written` while the checks run."""
    log = tmp_path / "proxy.jsonl"
    # An earlier verify's line for port 5432: not this run's.
    earlier = {"kind": "flow", "scheme": "tcp", "host": "127.0.0.1", "port": 5432}
    log.write_text(json.dumps(earlier) + "\n")
    sent: list[str] = []

    def refused(host: str, port: int) -> tuple[bool, str]:
        with log.open("a") as handle:
            if port == 22:  # the listener's lines while the checks run
                handle.writelines(json.dumps(line) + "\n" for line in written)
        return tcp.get(port, (True, "fine"))

    def unanswered(host: str, port: int, audit_log: str | None) -> tuple[bool, str]:
        sent.append(host)
        return True, f"{host}:{port}/udp: no answer in 2 s (timed out)"

    monkeypatch.setattr(netcheck, "tcp_refused", refused)
    monkeypatch.setattr(netcheck, "udp_unanswered", unanswered)
    for name in ("routed_via", "sinkholed", "blocked_host", "direct_unlisted"):
        monkeypatch.setattr(netcheck, name, lambda *_: (True, "fine"))
    monkeypatch.setattr(netcheck, "unlisted_at_proxy", lambda *_: (True, "fine"))
    monkeypatch.setattr(netcheck_audit, "FLOW_LINE_WAIT", 0.1)
    monkeypatch.setattr(netcheck_audit, "BUDGET_WAIT", 0.3)
    rows = netcheck.run(
        "127.0.0.9", None, "127.0.0.1", steered=True, audit_log=str(log), udp_host="203.0.113.9"
    )
    assert sent == ["203.0.113.9"]
    return {str(row["name"]): (row["passed"], row["detail"]) for row in rows}


RESET = (True, "127.0.0.1:22: reset by the proxy's deny listener")


def test_a_refused_flow_counts_only_with_its_line_written_during_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tcp = {"kind": "flow", "scheme": "tcp", "host": "127.0.0.1", "port": 22}
    udp = {"kind": "flow", "scheme": "udp", "host": "203.0.113.9", "port": 123}
    results = _flow_run(tmp_path, monkeypatch, {22: RESET, 5432: (False, "answered")}, [tcp, udp])
    assert results["raw TCP to port 22 refused"] == (True, f"{RESET[1]}; audited")
    assert results["UDP to port 123 unanswered"][1].endswith("(timed out); audited")
    # A failed check stays failed, line or not.
    assert results["raw TCP to port 5432 refused"] == (False, "answered")
    (tmp_path / "again").mkdir()
    # The UDP line names the proxy, not where the check sent its datagram: not its line.
    results = _flow_run(
        tmp_path / "again", monkeypatch, {22: RESET}, [{**udp, "host": "127.0.0.1"}]
    )
    for name in netcheck.FLOWS:  # 5432 has only the earlier verify's line
        passed, detail = results[name]
        assert not passed and "no `flow` line" in detail, name


def test_over_the_line_budget_a_flow_the_listener_took_counts_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = {"kind": "flow", "client": "127.0.0.1", "host": "", "port": 22}
    summary["extra"] = {"suppressed": 7}
    refused = (True, "127.0.0.1:5432: Connection refused")  # the kernel, not the listener
    results = _flow_run(tmp_path, monkeypatch, {22: RESET, 5432: refused}, [summary])
    passed, detail = results["raw TCP to port 22 refused"]
    assert passed and detail.endswith("counted in its summary line (7 flows suppressed)")
    passed, detail = results["UDP to port 123 unanswered"]
    assert passed and "summary line" in detail
    passed, detail = results["raw TCP to port 5432 refused"]
    assert not passed and "no `flow` line" in detail
    # Another client's summary says nothing about this one's flows.
    (tmp_path / "other").mkdir()
    other = {**summary, "client": "10.213.0.99"}
    results = _flow_run(tmp_path / "other", monkeypatch, {22: RESET}, [other])
    assert not results["raw TCP to port 22 refused"][0]


def test_a_log_that_cannot_be_read_fails_every_refused_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("routed_via", "sinkholed", "blocked_host", "direct_unlisted", "tcp_refused"):
        monkeypatch.setattr(netcheck, name, lambda *_: (True, "reset by the proxy's deny listener"))
    monkeypatch.setattr(netcheck, "unlisted_at_proxy", lambda *_: (True, "fine"))
    monkeypatch.setattr(netcheck, "udp_unanswered", lambda *_: (True, "no answer"))
    monkeypatch.setattr(netcheck_audit, "FLOW_LINE_WAIT", 0.1)
    monkeypatch.setattr(netcheck_audit, "BUDGET_WAIT", 0.2)
    missing = tmp_path / "not-there" / "proxy.jsonl"
    rows = netcheck.run("127.0.0.9", None, "127.0.0.1", steered=True, audit_log=str(missing))
    flows = [row for row in rows if row["name"] in netcheck.FLOWS]
    assert len(flows) == 3 and not any(row["passed"] for row in flows), flows
