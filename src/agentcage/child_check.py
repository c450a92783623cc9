"""A sidecar's config, validated in a short-lived child process of the same Python.

Validating a config builds the schema's validators: pydantic's for every model of every
section, several MiB that a sidecar would hold for its whole life in every cage. So
both sidecars run the check as `python -m MODULE FILE` and read its answer back: the
DNS sidecar a plan of a dozen values (dns/plan.py), the proxy the validated models
themselves (proxy/checked_config.py). The child runs the same `load_config` as before,
so a bad config fails the sidecar with the same error, word for word (`error_answer`
there, `raised_error` here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentcage import errors
from agentcage.errors import AgentcageError, ConfigError

_SELF = "/proc/self/exe"


def start_check(module: str, path: Path) -> subprocess.Popen[bytes]:
    """`python -m module path` with this process's Python and import path; OSError if
    it cannot start."""
    # The child imports what this process imports: its path, whichever way it started.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    argv = ["-m", module, str(path)]
    try:
        return _popen(sys.executable, argv, env)
    except PermissionError:
        # Started by a launcher that could reach the interpreter's path (setpriv as
        # root) while this user cannot: the running binary itself still can be.
        return _popen(_SELF, argv, env)


def _popen(executable: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [executable, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def finish_check(child: subprocess.Popen[bytes], timeout: float) -> tuple[int, bytes, str]:
    """The child's exit status, output and error output; it is killed on TimeoutExpired."""
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    return child.returncode, out, err.decode(errors="replace")


def error_answer(exc: AgentcageError) -> dict[str, Any]:
    """What a check answers for a config `load_config` refused: enough to raise it again."""
    return {
        "class": type(exc).__name__,
        "message": exc.message,
        "hint": exc.hint,
        "exit_code": exc.exit_code,
    }


def raised_error(found: dict[str, Any], other: type[AgentcageError]) -> AgentcageError:
    """The error `error_answer` described; `other` for an answer that describes none."""
    message, hint = found.get("message"), found.get("hint")
    if not isinstance(message, str) or not (hint is None or isinstance(hint, str)):
        return other("the config check answered an error without a message")
    kind = getattr(errors, str(found.get("class")), None)
    if not (isinstance(kind, type) and issubclass(kind, AgentcageError)):
        # InvalidConfig (config/load.py) is a ConfigError: same words, same exit code.
        kind = ConfigError if found.get("exit_code") == ConfigError.exit_code else other
    return kind(message, hint=hint)
