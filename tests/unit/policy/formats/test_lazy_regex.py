"""The built-in formats' regexes compile on first use or when warmed (pattern.py), and
the assembler's anchor index is built in one pass (assembly.py): both off `proxy run`'s
path to READY=1, neither changing what is found."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

from agentcage.config.inspection import SecretsConfig
from agentcage.policy.formats.assembly import AssemblyLimits, FormatAssembler
from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.pattern import LazyRegex
from agentcage.policy.formats.scanner import PatternScanner, build_patterns


def test_a_lazy_regex_compiles_once_and_every_copy_of_its_pattern_shares_it() -> None:
    lazy = LazyRegex(rb"tok_[a-z]{4}")
    pattern = dataclasses.replace(BUILTIN_PATTERNS[0], lazy_regex=lazy)
    copy = dataclasses.replace(pattern, hosts=("example.com",))
    assert lazy._compiled is None
    assert copy.regex is pattern.regex is lazy.compiled()
    assert copy.regex.search(b"x tok_abcd y") is not None
    assert lazy == LazyRegex(rb"tok_[a-z]{4}") and hash(lazy) == hash(LazyRegex(lazy.source))
    assert lazy != LazyRegex(rb"tok_[a-z]{5}")


def test_a_ready_regex_is_the_one_compiled_when_the_config_was_read() -> None:
    compiled = re.compile(rb"mine_[0-9]{8}")
    assert LazyRegex.ready(compiled).compiled() is compiled


def test_every_builtin_regex_compiles_to_its_source() -> None:
    for pattern in BUILTIN_PATTERNS:
        assert pattern.regex.pattern == pattern.lazy_regex.source, pattern.name


_DECISIONS = """
import json
from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from tests.unit.policy.helpers import ALNUM, fake, policy, request

github = "ghp_" + fake(ALNUM, 36)
aws = "AKIA" + fake("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
bodies = [
    "token=" + github,
    "token=" + github[::-1],  # found disguised
    "id=" + aws,
    '{"key": "' + github[:18] + '"}',
    "plain text, nothing to see",
]
def decisions(p):
    sent = [request(body=b.encode(), host="evil.example.com") for b in bodies]
    return [[d.verdict.value, d.reason] for d in map(p.check_request, sent)]
cold = policy()
compiled = sum(p.lazy_regex._compiled is not None for p in BUILTIN_PATTERNS)
first = decisions(cold)
warmed = policy()
warmed.warm()
print(json.dumps({"compiled_before": compiled, "cold": first, "warmed": decisions(warmed)}))
"""


def test_a_policy_not_yet_warmed_decides_as_a_warmed_one() -> None:
    # A fresh Python: in this one other tests have compiled the shared regexes already.
    result = subprocess.run(
        [sys.executable, "-c", _DECISIONS], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["compiled_before"] == 0
    assert answer["cold"] == answer["warmed"]
    verdicts = [verdict for verdict, _ in answer["cold"]]
    assert verdicts == ["block", "block", "block", "allow", "allow"]


def test_the_assemblers_anchor_index_lists_each_anchors_formats_in_order() -> None:
    patterns = build_patterns(SecretsConfig(), {})
    github = next(p for p in patterns if p.name == "github_token")
    twin = dataclasses.replace(github, name="github_twin")  # one anchor, two formats
    scanner = PatternScanner([*patterns, twin], disguised=False)
    assembler = FormatAssembler(scanner, AssemblyLimits(), lambda: 0.0)
    expected = [
        tuple(
            i
            for i, p in enumerate(assembler._patterns)
            if assembler._encoded.get(anchor, anchor) in p.anchors
        )
        for anchor in assembler._anchor_list
    ]
    assert assembler._by_anchor == expected
    assert any(len(formats) > 1 for formats in expected)
    assert all(expected)  # the base64 spellings of anchors too
