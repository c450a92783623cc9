"""Replay the public agent-egress-bench corpus through the real `agentcage proxy run`.

    git clone https://github.com/luckyPipewrench/agent-egress-bench /tmp/aeb
    .venv/bin/python -m bench.egress --cases /tmp/aeb
    .venv/bin/python -m bench.egress --cases /tmp/aeb --results /tmp/aeb-results

Each applicable case (an HTTP request or WebSocket frames) is sent through the
proxy under an allowlist config (the domains of the benign cases) and an
allow-all one (every domain but the corpus's blocklist test domain, as its
runner contract asks), inside a new network namespace whose only interface is
loopback. Prints containment and false blocks per category with every miss, and
the cases that cannot apply. Asserts nothing; exit status 0 unless the harness
fails. Needs `unshare` and unprivileged user namespaces.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.parse
from importlib.metadata import version
from pathlib import Path

if __package__ in (None, ""):  # `python bench/egress/__main__.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.egress.corpus import CorpusCase, Probe, load_corpus
from bench.egress.replay import Replayer
from bench.egress.sandbox import Sandbox, Setting, extra_addresses, registrable, settings
from bench.egress.scoring import Outcome, render, result_lines
from tests.support.netns import isolated
from tests.support.upstream import Received

ROOT = Path(__file__).resolve().parents[2]
_INSIDE = "AGENTCAGE_EGRESS_BENCH_INSIDE"
_SETTLE = 0.3  # seconds for a straggling request to reach the recorder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.egress", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=Path, required=True, help="an agent-egress-bench checkout")
    parser.add_argument(
        "--results", type=Path, help="also write runner-contract JSONL, a file per config, here"
    )
    args = parser.parse_args(argv)
    cases = load_corpus(args.cases)
    if os.environ.get(_INSIDE) != "1":
        urls = [c.probe.url for c in cases if c.probe is not None]
        command = [sys.executable, "-m", "bench.egress", *(argv or sys.argv[1:])]
        env = {**os.environ, _INSIDE: "1"}
        done = subprocess.run(isolated(command, extra_addresses(urls)), cwd=ROOT, env=env)
        return done.returncode
    started = time.monotonic()
    results = replay_all(cases)
    print(render(cases, results, f"{args.cases}, {len(cases)} case files"))
    print(f"{time.monotonic() - started:.1f} s")
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        for label, outcomes in results.items():
            lines = result_lines(cases, outcomes, version("agentcage"))
            name = "".join(ch if ch.isalnum() else "-" for ch in label) + ".jsonl"
            (args.results / name).write_text("\n".join(lines) + "\n")
    return 0


def replay_all(cases: list[CorpusCase]) -> dict[str, list[Outcome]]:
    applicable = [c for c in cases if c.probe is not None]
    hosts = [_host(c.probe) for c in applicable if c.probe is not None]
    benign = [registrable(_host(c.probe)) for c in applicable if c.probe and not c.malicious]
    blocklisted = [_host(c.probe) for c in applicable if c.probe and "domain_blocklist" in c.tags]
    sandbox = Sandbox(hosts)
    results: dict[str, list[Outcome]] = {}
    try:
        for index, setting in enumerate(settings(benign, blocklisted)):
            results[setting.label] = _run(sandbox, setting, index, applicable)
    finally:
        sandbox.close()
    return results


def _run(sandbox: Sandbox, setting: Setting, index: int, cases: list[CorpusCase]) -> list[Outcome]:
    proxy = sandbox.proxy(setting, index)
    replayer = Replayer(proxy.port, proxy.ca_cert)
    outcomes = []
    try:
        for case in cases:
            assert case.probe is not None
            seen, audited = len(sandbox.upstream.received), len(proxy.audit())
            asked = len(sandbox.dns.queries)
            saw = replayer.send(case.probe)
            delivered = _delivered(case.probe, sandbox.upstream.received[seen:])
            if not delivered:
                time.sleep(_SETTLE)
                delivered = _delivered(case.probe, sandbox.upstream.received[seen:])
            records = proxy.audit()[audited:]
            blocks = [r for r in records if r.get("verdict") == "block"]
            flags = [r for r in records if r.get("verdict") == "flag"]
            host = _host(case.probe).lower()
            outcomes.append(
                Outcome(
                    case,
                    setting.label,
                    delivered,
                    saw,
                    reason=_why(blocks[0]) if blocks else "",
                    flagged=_why(flags[0]) if flags else "",
                    resolved=any(n == host for n, _ in sandbox.dns.queries[asked:]),
                )
            )
    finally:
        proxy.stop()
    return outcomes


def _delivered(probe: Probe, arrived: list[Received]) -> bool:
    if not probe.websocket:
        return bool(arrived)
    messages = sum(frame.fin for frame in probe.frames)
    return sum(len(item.ws_messages) for item in arrived) >= messages


def _why(record: dict[str, object]) -> str:
    return f"{record.get('inspector', '')}: {record.get('reason', '')}"[:240]


def _host(probe: Probe) -> str:
    return (urllib.parse.urlsplit(probe.url).hostname or "").lower()


if __name__ == "__main__":
    raise SystemExit(main())
