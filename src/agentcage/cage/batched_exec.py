"""Several short commands in one container through one `podman exec`.

`cage verify` reads a handful of files in the agent and in the proxy (`cat`, one
`touch`). Each `podman exec` is a Podman process, an exec session and a conmon: about
0.3 s of CPU on the 2-core test machine, and verify ran a dozen of them at once, so the
CPU, not the waiting, set its time. `run_steps` runs the steps as one `sh -c` script
that frames each step's output (stdout and stderr together, as a terminal shows them)
with a random marker line and its exit code.

A container without `sh` (an agent image may be a single static binary) gets the old
way: one `podman exec` per step, with the same results.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from agentcage.cage.podman import PodmanHost


@dataclass(frozen=True)
class StepResult:
    code: int
    output: str  # stdout and stderr as they came


def script(steps: Sequence[tuple[str, Sequence[str]]], marker: str) -> str:
    """`sh` text that runs each step and frames its output: `MARKER NAME` before, and
    `MARKER end CODE` on a line of its own after (a newline first: output may lack one)."""
    parts = []
    for name, argv in steps:
        parts.append(
            f"printf '%s %s\\n' {marker} {shlex.quote(name)}; {shlex.join(argv)} 2>&1; "
            f"printf '\\n%s end %s\\n' {marker} $?"
        )
    return "; ".join(parts)


def parse(text: str, marker: str) -> dict[str, StepResult]:
    """The framed steps in `text`; a step cut short (no end line) is left out."""
    found: dict[str, StepResult] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        words = line.split(" ")
        if words[0] != marker or len(words) < 2:
            lines.append(line)
            continue
        if words[1] == "end" and len(words) == 3 and name is not None:
            try:
                code = int(words[2])
            except ValueError:
                code = -1
            # The framing's newlines are the ones around the output: what is between is it.
            found[name] = StepResult(code, "\n".join(lines))
            name = None
        else:
            name, lines = " ".join(words[1:]), []
    return found


def run_steps(
    host: PodmanHost, container: str, steps: Sequence[tuple[str, Sequence[str]]]
) -> dict[str, StepResult]:
    """Each step's exit code and output, all from one `podman exec` where `sh` exists."""
    marker = f"agentcage-step-{secrets.token_hex(8)}"
    result = host.podman("exec", container, "sh", "-c", script(steps, marker), check=False)
    found = parse(result.stdout, marker)
    if found.keys() == {name for name, _ in steps}:
        return found
    if found:
        # sh ran but a step's frame is missing (the exec was cut short): say so per step
        # rather than run anything twice.
        missing = StepResult(-1, (result.stderr or "no output").strip()[-200:])
        return {name: found.get(name, missing) for name, _ in steps}
    out = {}
    for name, argv in steps:
        single = host.podman("exec", container, *argv, check=False)
        out[name] = StepResult(single.returncode, single.stdout + single.stderr)
    return out
