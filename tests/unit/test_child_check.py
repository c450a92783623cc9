"""A sidecar's config check in a fork of the sidecar (child_check.py): the answer, exit
status and error output a new Python gives, and a new Python wherever a fork is unsafe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcage.child_check import finish_check, start_check
from tests.support import check_probe

PROBE = "tests.support.check_probe"


@pytest.fixture
def marked() -> Iterator[None]:
    check_probe.MARKER = "set in the parent"
    yield
    check_probe.MARKER = "as imported"


def _answer(out: bytes) -> dict[str, object]:
    found = json.loads(out)
    assert isinstance(found, dict)
    return found


def test_a_forked_check_runs_in_a_fork_of_this_process(marked: None) -> None:
    code, out, err = finish_check(start_check(PROBE, Path("ok"), fork=True), 30)
    answer = _answer(out)
    assert (code, err) == (0, "")
    assert answer["marker"] == "set in the parent"  # this process's state: a fork
    assert answer["pid"] != os.getpid()
    assert answer["stdin"] == ""  # nothing of this process's input


def test_without_fork_the_check_is_a_new_python(marked: None) -> None:
    code, out, _ = finish_check(start_check(PROBE, Path("ok")), 30)
    assert code == 0 and _answer(out)["marker"] == "as imported"


def test_a_process_with_a_second_thread_starts_a_new_python(marked: None) -> None:
    # A fork keeps only the calling thread: a lock another one held would stay held.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        code, out, _ = finish_check(start_check(PROBE, Path("ok"), fork=True), 30)
    finally:
        stop.set()
        other.join()
    assert code == 0 and _answer(out)["marker"] == "as imported"


@pytest.mark.parametrize("fork", [True, False])
def test_a_check_that_raises_exits_1_with_its_traceback(fork: bool) -> None:
    code, out, err = finish_check(start_check(PROBE, Path("raise"), fork=fork), 30)
    assert (code, out) == (1, b"")
    assert err.startswith("Traceback") and err.splitlines()[-1] == (
        "RuntimeError: the probe's check broke"
    )


@pytest.mark.parametrize("fork", [True, False])
def test_a_check_exits_with_the_status_it_raises(fork: bool) -> None:
    code, out, err = finish_check(start_check(PROBE, Path("exit 3"), fork=fork), 30)
    assert (code, out, err) == (3, b"", "")


def test_a_forked_check_that_takes_too_long_is_killed_and_reaped() -> None:
    check = start_check(PROBE, Path("hang"), fork=True)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        finish_check(check, 0.5)
    assert time.monotonic() - started < 10
    assert check.returncode == -9  # SIGKILL, and waited for: no zombie left
    with pytest.raises(ChildProcessError):
        os.waitpid(check.pid, os.WNOHANG)


def test_output_this_process_had_not_written_is_not_written_twice(
    capfd: pytest.CaptureFixture[str],
) -> None:
    sys.stdout.write("written once")  # still in Python's buffer when the child forks
    code, _, _ = finish_check(start_check(PROBE, Path("ok"), fork=True), 30)
    assert code == 0
    assert capfd.readouterr().out == "written once"
