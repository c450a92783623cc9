"""The exfiltration benchmark, one rep, through the real `agentcage proxy run`.

The printed benchmark (`python -m bench.exfil`) is for people; this keeps its
targets true in CI: detection per tier with the secrets given to the proxy (the
red-team tier of issue 15's techniques included), and no false blocks on benign
traffic, judged from what reached the loopback sink.
"""

from __future__ import annotations

import pytest
from bench.exfil.benign import benign_cases
from bench.exfil.cases import malicious_cases
from bench.exfil.redteam import ALL_TECHNIQUES
from bench.exfil.report import FP_TARGETS, TARGETS, detection, false_blocks
from bench.exfil.runners import make_runner
from bench.exfil.world import make_secrets

pytestmark = pytest.mark.integration


def test_the_benchmark_meets_its_targets_through_the_real_proxy() -> None:
    secrets = make_secrets(7)
    cases = malicious_cases(secrets, 7, 1, ALL_TECHNIQUES) + benign_cases(secrets, 7, 1)
    runner = make_runner("proxy", "given", secrets, cases)
    try:
        outcomes = [runner.run(case) for case in cases]
    finally:
        runner.close()
    # A step that errored (rather than being refused) would count as caught: keep them rare.
    assert sum(o.errors for o in outcomes) <= 2
    tiers = detection(outcomes, "tier")
    for tier, target in TARGETS.items():
        caught, total = tiers[tier]
        assert caught / total >= target, (tier, [o.case.id for o in outcomes if o.leaked])
    blocked = false_blocks(outcomes, "tier")
    for tier, target in FP_TARGETS.items():
        refused, total = blocked[tier]
        assert refused / total <= target, [o.reason for o in outcomes if o.blocked]
