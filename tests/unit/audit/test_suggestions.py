"""Grouping the names learn mode let through, and the section printed from them."""

from __future__ import annotations

from agentcage.audit.suggestions import Suggestion, registrable_domain, suggest


def line(
    name: str, kind: str = "http", learn: str = "would-block", t: str = ""
) -> dict[str, object]:
    key = "qname" if kind == "dns" else "host"
    record: dict[str, object] = {"kind": kind, key: name, "time": t or "2026-12-05T10:00:00.000Z"}
    if learn:
        record["learn"] = learn
    return record


def test_registrable_domains_come_from_the_public_suffix_list() -> None:
    assert registrable_domain("files.pythonhosted.org") == "pythonhosted.org"
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("x.workers.dev") == "x.workers.dev"  # workers.dev is a suffix
    assert registrable_domain("com") == "com"
    assert registrable_domain("a.b.attacker.example") == "attacker.example"  # unknown TLD
    assert registrable_domain("x.y.internal") == "y.internal"


def test_only_would_block_decision_lines_count() -> None:
    records = [
        line("pypi.org"),
        line("PyPI.org.", "dns"),
        line("files.pythonhosted.org", t="2026-12-05T10:00:05.000Z"),
        line("files.pythonhosted.org", "websocket", t="2026-12-05T09:59:00.000Z"),
        line("pypi.org", "response"),  # repeats its request's line
        line("allowed.example", learn=""),
        line("evil.example", learn="something-else"),
    ]
    groups = suggest(records)
    assert [(g.domain, [n.name for n in g.names]) for g in groups] == [
        ("pypi.org", ["pypi.org"]),
        ("pythonhosted.org", ["files.pythonhosted.org"]),
    ]
    pypi, hosted = groups
    assert (pypi.requests, pypi.queries) == (1, 1)
    assert (hosted.names[0].first, hosted.names[0].last) == (
        "2026-12-05T09:59:00.000Z",
        "2026-12-05T10:00:05.000Z",
    )


def test_covered_names_are_left_out() -> None:
    groups = suggest([line("pypi.org"), line("github.com")], lambda name: name == "pypi.org")
    assert [g.domain for g in groups] == ["github.com"]


def test_the_section_keeps_current_entries_and_switches_back_to_enforce() -> None:
    groups = suggest([line("api.github.com"), line("github.com"), line("pypi.org", "dns")])
    text = Suggestion(groups, entries=("anthropic.com",), cage="demo").yaml()
    assert text.splitlines()[2:] == [
        "domains:",
        "  allow:",
        "    - anthropic.com",
        "    # github.com: 2 requests, 0 DNS queries",
        "    - api.github.com",
        "    - github.com",
        "    # pypi.org: 0 requests, 1 DNS query",
        "    - pypi.org",
        "  enforcement: enforce",
    ]
    collapsed = Suggestion(groups, by_domain=True)
    assert collapsed.result() == ["github.com", "pypi.org"]
    assert "    # github.com: api.github.com, github.com (2 requests, 0 DNS queries)" in (
        collapsed.yaml()
    )


def test_a_blocklist_loses_the_names_that_were_used() -> None:
    groups = suggest([line("pastebin.com")])
    shown = Suggestion(groups, mode="blocklist", entries=("pastebin.com", "evil.example"))
    assert shown.result() == ["evil.example"]
    assert "  block:\n    # used while learning, left out: pastebin.com\n" in shown.yaml()


def test_a_name_whose_answer_was_refused_is_left_out() -> None:
    refused = {"kind": "dns", "qname": "rebind.example", "inspector": "dns-answer"}
    records = [line("rebind.example", "dns"), refused, line("both.example", "dns")]
    records += [{**refused, "qname": "both.example"}, line("both.example")]
    assert [g.domain for g in suggest(records)] == ["both.example"]  # reached by a request
