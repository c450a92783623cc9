"""A sidecar's config check in a fork of the sidecar (child_check.py): the answer, exit
status and error output a new Python gives, and a new Python wherever a fork is unsafe.

Each case runs in a Python of its own (`_checked`): whether a fork is taken depends on
the process having a single thread, which a test process that other tests ran in may
not have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

_PROGRAM = """
import json, os, subprocess, sys, threading, time
from pathlib import Path
from agentcage.child_check import finish_check, start_check
from tests.support import check_probe

what, how, threads, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
check_probe.MARKER = "set in the parent"
stop = threading.Event()
for _ in range(threads):
    threading.Thread(target=stop.wait, daemon=True).start()
sys.stdout.write("buffered in the parent ")  # not flushed before the check starts
check = start_check("tests.support.check_probe", Path(what), fork=how == "fork")
started = time.monotonic()
try:
    code, out, err = finish_check(check, timeout)
    found = {"code": code, "out": out.decode(), "err": err}
except subprocess.TimeoutExpired:
    try:
        os.waitpid(check.pid, os.WNOHANG)
        reaped = False
    except ChildProcessError:
        reaped = True
    found = {"timeout": time.monotonic() - started, "code": check.returncode, "reaped": reaped}
stop.set()
sys.stdout.write(json.dumps({**found, "parent": os.getpid()}))
"""


def _checked(what: str, *, fork: bool = True, threads: int = 0, timeout: float = 30) -> Any:
    """What a check of `what` answered, in a new Python that starts it as asked."""
    argv = [what, "fork" if fork else "new", str(threads), str(timeout)]
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        check=True,
    )
    before, _, answer = done.stdout.partition("buffered in the parent ")
    assert before == "" and "buffered in the parent" not in answer  # written once, by it
    return json.loads(answer)


def test_a_forked_check_runs_in_a_fork_of_this_process() -> None:
    found = _checked("ok")
    answer = json.loads(found["out"])
    assert (found["code"], found["err"]) == (0, "")
    assert answer["marker"] == "set in the parent"  # the parent's state: a fork of it
    assert answer["pid"] != found["parent"]
    assert answer["stdin"] == ""  # nothing of the parent's input


def test_without_fork_the_check_is_a_new_python() -> None:
    found = _checked("ok", fork=False)
    assert found["code"] == 0 and json.loads(found["out"])["marker"] == "as imported"


def test_a_process_with_a_second_thread_starts_a_new_python() -> None:
    # A fork keeps only the calling thread: a lock another one held would stay held.
    found = _checked("ok", threads=1)
    assert found["code"] == 0 and json.loads(found["out"])["marker"] == "as imported"


@pytest.mark.parametrize("fork", [True, False])
def test_a_check_that_raises_exits_1_with_its_traceback(fork: bool) -> None:
    found = _checked("raise", fork=fork)
    assert (found["code"], found["out"]) == (1, "")
    assert found["err"].startswith("Traceback")
    assert found["err"].splitlines()[-1] == "RuntimeError: the probe's check broke"


@pytest.mark.parametrize("fork", [True, False])
def test_a_check_exits_with_the_status_it_raises(fork: bool) -> None:
    assert _checked("exit 3", fork=fork) | {"parent": 0} == {
        "code": 3,
        "out": "",
        "err": "",
        "parent": 0,
    }


def test_a_forked_check_that_takes_too_long_is_killed_and_reaped() -> None:
    found = _checked("hang", timeout=0.5)
    assert found["timeout"] < 10
    assert found["code"] == -9 and found["reaped"]  # SIGKILL, and waited for: no zombie
