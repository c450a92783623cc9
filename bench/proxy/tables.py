"""The proxy bench's printed tables: times per request, ratios against the targets, CPU."""

from __future__ import annotations

import statistics

from bench.proxy.payloads import SIZES

TARGETS = {"1 KiB": 1.15, "64 KiB": 1.15, "1 MiB": 1.3}
TRANSPARENT_TARGET = 1.1


def report_split(
    results: dict[tuple[str, str, str], list[float]], policy_ms: dict[str, float]
) -> None:
    print()
    print("keep-alive: where agentcage's extra time per request goes (mean, ms):")
    for size in SIZES:
        full = statistics.mean(results[("agentcage", size, "keep-alive")]) * 1000
        bare = statistics.mean(results[("mitmdump", size, "keep-alive")]) * 1000
        extra = full - bare
        print(
            f"  {size:<7} extra {extra:6.2f}  policy engine {policy_ms[size]:6.2f}"
            f"  proxy code and noise {extra - policy_ms[size]:6.2f}"
            f"  (target allows {bare * (TARGETS[size] - 1):5.2f})"
        )


def report_cpu(cpu: dict[tuple[str, str, str], tuple[float, int]]) -> None:
    """CPU per request of each proxy process: what wall time becomes on a busy machine."""
    print()
    print("proxy process CPU per request (ms; 10 ms clock ticks, so rough at small sizes):")
    for size in SIZES:
        for conn in ("keep-alive", "new TLS"):
            ours = cpu[("agentcage", size, conn)]
            bare = cpu[("mitmdump", size, conn)]
            ours_ms, bare_ms = ours[0] / ours[1] * 1000, bare[0] / bare[1] * 1000
            ratio = ours_ms / bare_ms if bare_ms else float("nan")
            print(
                f"  {size:<7} {conn:<11} agentcage {ours_ms:6.2f}  mitmdump {bare_ms:6.2f}"
                f"  ratio {ratio:4.2f}x"
            )


def compared(
    results: dict[tuple[str, str, str], list[float]], key: tuple[str, str, str], other: str
) -> tuple[float, float]:
    """(mean, p50) time per request of `key` over that of mode `other` for the same case."""
    ours, theirs = results[key], results[(other, *key[1:])]
    return (
        statistics.mean(ours) / statistics.mean(theirs),
        statistics.median(ours) / statistics.median(theirs),
    )


def report_transparent(results: dict[tuple[str, str, str], list[float]]) -> None:
    print()
    print("transparent path vs explicit proxy (mean time per request; p50 in brackets):")
    for size in SIZES:
        for conn in ("keep-alive", "new TLS"):
            ratio, p50 = compared(results, ("transparent", size, conn), "agentcage")
            verdict = "ok" if ratio <= TRANSPARENT_TARGET else f"OVER {TRANSPARENT_TARGET}x target"
            shown = f"transparent/explicit {ratio:5.2f}x ({p50:4.2f}x)"
            print(f"  {size:<7} {conn:<11} {shown}  [{verdict}]")


def report(results: dict[tuple[str, str, str], list[float]]) -> None:
    head = ("mode", "body", "connection", "n", "req/s", "p50 ms", "p99 ms")
    print("{:<11} {:<7} {:<11} {:>5} {:>8} {:>8} {:>8}".format(*head))
    for (mode, size, conn), times in results.items():
        ordered = sorted(times)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = len(times) / sum(times)
        print(
            f"{mode:<11} {size:<7} {conn:<11} {len(times):>5} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}"
        )
    print()
    print("ratios of mean time per request (p50 ratio in brackets):")
    for size in SIZES:
        for conn in ("keep-alive", "new TLS"):
            vs_bare, p50_bare = compared(results, ("agentcage", size, conn), "mitmdump")
            vs_direct = compared(results, ("agentcage", size, conn), "direct")[0]
            verdict = "ok" if vs_bare <= TARGETS[size] else f"OVER {TARGETS[size]}x target"
            print(
                f"  {size:<7} {conn:<11} agentcage/mitmdump {vs_bare:5.2f}x ({p50_bare:4.2f}x)"
                f"  agentcage/direct {vs_direct:5.2f}x  [{verdict}]"
            )
