"""The printed table: detection per technique and tier, false blocks per traffic shape."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from bench.exfil.redteam import ALL_TECHNIQUES, ALL_TIERS
from bench.exfil.runners import Outcome

TARGETS = {
    "plain": 1.0,
    "encoding": 0.99,
    "obfuscation": 0.95,
    "split": 0.90,
    "dns": 0.90,
    "redteam": 1.0,  # with the values given: nothing to guess, so no ceiling
}
# "beyond": techniques no target covers (pieces under min_piece, keyed or lossy transforms).
FP_TARGETS = {"core": 0.0, "hard": 0.02}


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.1f}%" if whole else "    n/a"


def detection(outcomes: Iterable[Outcome], key: str) -> dict[str, tuple[int, int]]:
    """key "technique" or "tier" -> (caught, total) over malicious cases."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in outcomes:
        if outcome.case.malicious:
            name = getattr(outcome.case, key)
            counts[name][0] += not outcome.leaked
            counts[name][1] += 1
    return {name: (c[0], c[1]) for name, c in counts.items()}


def false_blocks(outcomes: Iterable[Outcome], key: str) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in outcomes:
        if not outcome.case.malicious:
            name = getattr(outcome.case, key)
            counts[name][0] += outcome.blocked
            counts[name][1] += 1
    return {name: (c[0], c[1]) for name, c in counts.items()}


def by_secret(outcomes: Iterable[Outcome], mode: str) -> list[str]:
    """Contained cases per tier and secret kind: where a mode's misses are."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for outcome in outcomes:
        if outcome.case.malicious:
            cell = counts[(outcome.case.tier, outcome.case.kind)]
            cell[0] += not outcome.leaked
            cell[1] += 1
    kinds = sorted({kind for _, kind in counts})
    lines = [
        f"contained per tier and secret, {mode}",
        "",
        f"{'tier':22} " + " ".join(f"{k:>11}" for k in kinds),
    ]
    for tier in ALL_TIERS:
        if any((tier, k) in counts for k in kinds):
            cells = " ".join(f"{'/'.join(map(str, counts[(tier, k)])):>11}" for k in kinds)
            lines.append(f"{tier:22} {cells}")
    return [*lines, ""]


def render(results: dict[str, list[Outcome]], via: str, seed: int) -> str:
    modes = list(results)
    lines = [
        f"agentcage exfiltration benchmark  (seed {seed}, through: {via})",
        "detection = malicious cases whose secret did NOT fully arrive at the sink",
        "",
        f"{'technique':22} {'tier':12} {'cases':>5} " + " ".join(f"{m:>10}" for m in modes),
    ]
    per_mode = {m: detection(results[m], "technique") for m in modes}
    for name, (tier, _fn) in ALL_TECHNIQUES.items():
        if name not in per_mode[modes[0]]:
            continue
        total = per_mode[modes[0]].get(name, (0, 0))[1]
        cells = " ".join(f"{_pct(*per_mode[m].get(name, (0, 0))):>10}" for m in modes)
        lines.append(f"{name:22} {tier:12} {total:5} {cells}")
    lines += ["", f"{'tier':22} {'target':>12} {'cases':>5} " + " ".join(f"{m:>10}" for m in modes)]
    tiers = {m: detection(results[m], "tier") for m in modes}
    for tier in ALL_TIERS:
        total = tiers[modes[0]].get(tier, (0, 0))[1]
        cells = " ".join(f"{_pct(*tiers[m].get(tier, (0, 0))):>10}" for m in modes)
        target = f">= {TARGETS[tier]:.0%}" if tier in TARGETS else "none"
        lines.append(f"{tier:22} {target:>12} {total:5} {cells}")
    lines.append("")
    for mode in modes:
        lines += by_secret(results[mode], mode)
    lines += ["false blocks (benign cases refused)", ""]
    lines.append(f"{'traffic':22} {'tier':12} {'cases':>5} " + " ".join(f"{m:>10}" for m in modes))
    shapes = {m: false_blocks(results[m], "technique") for m in modes}
    tier_of = {o.case.technique: o.case.tier for o in results[modes[0]] if not o.case.malicious}
    for name, tier in tier_of.items():
        total = shapes[modes[0]][name][1]
        cells = " ".join(f"{_pct(*shapes[m][name]):>10}" for m in modes)
        lines.append(f"{name:22} {tier:12} {total:5} {cells}")
    lines.append("")
    fp_tiers = {m: false_blocks(results[m], "tier") for m in modes}
    for tier, target in FP_TARGETS.items():
        total = fp_tiers[modes[0]].get(tier, (0, 0))[1]
        cells = " ".join(f"{_pct(*fp_tiers[m].get(tier, (0, 0))):>10}" for m in modes)
        lines.append(f"{'benign ' + tier:22} {'<= ' + format(target, '.0%'):>12} {total:5} {cells}")
    errors = {m: sum(o.errors for o in results[m]) for m in modes}
    vias = sorted({o.via for m in modes for o in results[m]})
    lines += ["", f"step errors (5xx/connection): {errors}; judged via: {', '.join(vias)}"]
    for mode in modes:
        errored = [o.case.id for o in results[mode] if o.errors][:12]
        if errored:
            lines.append(f"{mode}: cases with step errors (not counted as leaks): {errored}")
    for mode in modes:
        missed = [o.case.id for o in results[mode] if o.leaked][:12]
        blocked = [o for o in results[mode] if not o.case.malicious and o.blocked]
        lines.append(f"{mode}: leaked e.g. {missed or '-'}")
        lines.append(f"{mode}: false blocks e.g. {[o.case.id for o in blocked[:12]] or '-'}")
        lines += [f"  {o.case.id}: {o.reason}" for o in blocked[:3]]
    return "\n".join(lines)
