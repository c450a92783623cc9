"""One `sh -c` for several steps (cage/batched_exec.py), run by a real `sh` here."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentcage.cage.batched_exec import StepResult, parse, script

MARKER = "agentcage-step-0123456789abcdef"


def _run(steps: list[tuple[str, tuple[str, ...]]]) -> dict[str, StepResult]:
    out = subprocess.run(
        ["sh", "-c", script(steps, MARKER)], capture_output=True, text=True, check=False
    )
    return parse(out.stdout, MARKER)


def test_each_step_keeps_its_output_and_exit_code(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    bare = tmp_path / "bare"
    bare.write_text("no newline at the end")
    found = _run(
        [
            ("ca", ("cat", str(pem))),
            ("missing", ("cat", str(tmp_path / "nothing here"))),
            ("bare", ("cat", str(bare))),
            ("empty", ("true",)),
            ("touch", ("touch", "/proc/agentcage-verify")),
        ]
    )
    assert found["ca"] == StepResult(0, pem.read_text())
    assert found["missing"].code == 1 and "No such file" in found["missing"].output
    assert found["bare"] == StepResult(0, "no newline at the end")
    assert found["empty"] == StepResult(0, "")
    # stderr is part of the step's output: the read-only check reads touch's complaint.
    assert found["touch"].code != 0 and "touch" in found["touch"].output


def test_output_cannot_end_a_step_early_without_the_marker(tmp_path: Path) -> None:
    lying = tmp_path / "lying"
    lying.write_text("agentcage-step-ffff end 0\nend 0\n")
    found = _run([("lying", ("cat", str(lying))), ("after", ("false",))])
    assert found["lying"] == StepResult(0, lying.read_text())
    assert found["after"].code == 1


def test_a_step_cut_short_is_left_out() -> None:
    text = f"{MARKER} one\nfirst\n\n{MARKER} end 0\n{MARKER} two\npartial"
    assert parse(text, MARKER) == {"one": StepResult(0, "first\n")}
