"""SessionRunner: many commands through one prefixed process, answers as if run one by one.

The prefix here is a real wrapper that runs its arguments on this machine and counts how
often it was started, standing in for `podman exec -i NAME`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentcage.cage.exec_session import SessionRunner
from agentcage.cage.podman import PodmanHost, SubprocessRunner, unreachable
from agentcage.errors import PodmanError


def wrapper(tmp_path: Path) -> tuple[tuple[str, ...], Path]:
    starts = tmp_path / "starts"
    return ("sh", "-c", f'echo started >> {starts}; exec "$@"', "wrap"), starts


def test_every_command_goes_through_one_started_prefix(tmp_path: Path) -> None:
    prefix, starts = wrapper(tmp_path)
    runner = SessionRunner(prefix)
    odd = ["printf", "%s|", "two words", "$HOME", "it's", 'a "quote"', "back\\slash", "ü"]
    assert runner.run(odd).stdout == 'two words|$HOME|it\'s|a "quote"|back\\slash|ü|'
    assert runner.run(["cat"], input="line 1\nline 2 'x'\n").stdout == "line 1\nline 2 'x'\n"
    assert runner.run(["cat"]).stdout == ""  # no input: empty stdin, not the session's
    # A pipe, as for a `podman exec` of its own: `podman secret create NAME -` wants one.
    assert runner.run(["sh", "-c", "test -p /dev/stdin && cat"], input="v").stdout == "v"
    for _ in range(5):
        runner.run(["true"])
    assert starts.read_text().splitlines() == ["started"]


def test_answers_carry_the_full_argv_exit_code_and_stderr(tmp_path: Path) -> None:
    prefix, _ = wrapper(tmp_path)
    runner = SessionRunner(prefix)
    argv = ["sh", "-c", "echo out; echo err >&2; exit 3"]
    result = runner.run(argv, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.argv == (*prefix, *argv)  # as SubprocessRunner names the command
    with pytest.raises(PodmanError, match=r"exit 3.*err"):
        runner.run(argv)


def test_threads_get_their_own_answers(tmp_path: Path) -> None:
    prefix, starts = wrapper(tmp_path)
    runner = SessionRunner(prefix)
    with ThreadPoolExecutor(max_workers=6) as pool:
        outs = list(pool.map(lambda i: runner.run(["echo", str(i)]).stdout, range(30)))
    assert outs == [f"{i}\n" for i in range(30)]
    assert len(starts.read_text().splitlines()) == 1


def test_a_command_over_its_timeout_fails_and_the_next_one_runs(tmp_path: Path) -> None:
    prefix, _ = wrapper(tmp_path)
    runner = SessionRunner(prefix)
    with pytest.raises(PodmanError, match="did not finish within 1s"):
        runner.run(["sleep", "30"], timeout=1)
    assert runner.run(["echo", "next"]).stdout == "next\n"


def test_a_prefix_that_cannot_start_gives_its_own_error(tmp_path: Path) -> None:
    # What `podman exec` says when the host container is gone; the one-shot fallback
    # reports it, so `unreachable` still recognises it.
    gone = 'echo "Error: no container with name or ID \\"h\\" found: no such container" >&2'
    runner = SessionRunner(("sh", "-c", f"{gone}; exit 125", "gone"))
    result = runner.run(["systemctl", "is-active", "x"], check=False)
    assert result.returncode == 125 and unreachable(result)
    oneshot = SubprocessRunner(prefix=runner.prefix).run(["true"], check=False)
    assert (result.stderr, result.argv[:4]) == (oneshot.stderr, oneshot.argv[:4])


def test_a_session_that_dies_while_idle_is_replaced(tmp_path: Path) -> None:
    prefix, starts = wrapper(tmp_path)
    runner = SessionRunner(prefix)
    runner.run(["true"])
    assert runner._session is not None
    runner._session.proc.kill()
    runner._session.proc.wait()
    assert runner.run(["echo", "again"]).stdout == "again\n"
    assert len(starts.read_text().splitlines()) == 2


def test_a_session_that_dies_under_a_command_is_an_error_not_a_retry(tmp_path: Path) -> None:
    prefix, starts = wrapper(tmp_path)
    runner = SessionRunner(prefix)
    runner.run(["true"])
    assert runner._session is not None
    loop = runner._session.proc.pid  # the wrapper exec'd the loop's shell
    # The command may have done its work before the end: it must not run twice.
    with pytest.raises(PodmanError, match="got no answer: the session ended"):
        runner.run(["sh", "-c", f"echo ran >> {tmp_path / 'ran'}; kill -9 {loop}; sleep 1"])
    assert (tmp_path / "ran").read_text() == "ran\n"
    assert runner.run(["echo", "again"]).stdout == "again\n"  # in a fresh session
    assert len(starts.read_text().splitlines()) == 2


def test_only_a_podman_exec_prefix_gets_a_session() -> None:
    prefixed = PodmanHost.detect({"AGENTCAGE_SYSTEMD_EXEC": "podman exec -i h"})
    assert isinstance(prefixed.runner, SessionRunner)
    assert prefixed.runner.prefix == ("podman", "exec", "-i", "h")
    assert isinstance(
        PodmanHost.detect({"XDG_CONFIG_HOME": "/nonexistent"}).runner, SubprocessRunner
    )
    # A prefix that re-parses its arguments would mangle the loop: one process per call.
    other = PodmanHost.detect({"AGENTCAGE_SYSTEMD_EXEC": "ssh -T cages@host"}).runner
    assert isinstance(other, SubprocessRunner) and other.prefix == ("ssh", "-T", "cages@host")


def test_a_command_exits_without_waiting_for_its_session_to_wind_down() -> None:
    # `podman exec` takes a moment to clean up after its loop ends; the CLI need not wait.
    script = (
        "from agentcage.cage.exec_session import SessionRunner\n"
        "runner = SessionRunner(('sh', '-c', '\"$@\"; sleep 5', 'slow'))\n"
        "print(runner.run(['echo', 'done']).stdout, end='')\n"
    )
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, check=True, timeout=30
    )
    assert out.stdout == "done\n"
    assert time.monotonic() - start < 4


def test_a_command_that_exits_124_itself_is_not_a_timeout(tmp_path: Path) -> None:
    prefix, _ = wrapper(tmp_path)
    result = SessionRunner(prefix).run(["sh", "-c", "exit 124"], check=False)
    assert result.returncode == 124
