"""`proxy run`'s config, validated in a child process: the proxy never imports pydantic.

`python -m agentcage.proxy.checked_config FILE` runs `check_config` (the same checks and
errors as ever) and answers a pickle of the validated config as plain frozen objects
(config/snapshot.py), or the error. So the serving proxy holds neither pydantic nor the
schema's models and validators: about 6 MiB in every cage (docs/cages.md). The policy
engine reads a snapshot as it reads the models (fields and properties by name); the CLI
and the tests still hand it validated models.

The child starts first thing in `proxy run` (`ConfigCheck`), a fork of it then, and checks
while the proxy imports its policy engine; a reload (SIGHUP) runs one more, a new Python.
`proxy run`'s first check uses the answer `cage create` stored for the same bytes by the
same code, if there is one (`answer`, checked_ahead.py): then no child runs.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agentcage.child_check import (
    Check,
    error_answer,
    finish_check,
    raised_error,
    start_check,
)
from agentcage.config.snapshot import Snapshot, snapshot_kind, snapshot_of
from agentcage.errors import AgentcageError, ConfigError

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig

CHECK_MODULE = "agentcage.proxy.checked_config"
_FORMAT = 1
_CHECK_TIMEOUT = 120.0  # the whole schema's import and a config of up to 1 MiB, on a busy host
# What a snapshot of a validated config is made of.
_MODULES = {"ipaddress", "pathlib", "agentcage.config.snapshot"}
_PLAIN_BUILTINS = {"set", "frozenset", "tuple", "list", "dict", "int", "float", "str", "bytes"}


@dataclass(frozen=True)
class CheckedConfig:
    version: str  # `policy_version` of the file, taken before it was read
    config: CageConfig
    warnings: tuple[str, ...]


class ConfigCheck:
    """One check of a config file, running in a child from construction to `result`."""

    def __init__(self, path: Path, *, fork: bool = False, ahead: bool = False) -> None:
        """`fork`: the child is a fork of this process if it has one thread (child_check.py).
        `ahead`: an answer stored ahead for the same bytes by the same code is used."""
        self._path = path
        self._child: Check | None = None
        self._failed: OSError | None = None
        self._outcome: CheckedConfig | AgentcageError | None = None
        try:
            self._child = start_check(
                CHECK_MODULE, path, fork=fork, ahead=_readable if ahead else None
            )
        except OSError as exc:
            self._failed = exc  # said by `result`, where a check's errors are raised

    def wait(self) -> None:
        """Until the check has answered; `result` then says what without waiting."""
        with contextlib.suppress(AgentcageError):
            self.result()

    def result(self) -> CheckedConfig:
        """The validated config; the check's own error for a bad config, ConfigError
        for a check that cannot run or answers nonsense (fail closed either way)."""
        if self._outcome is None:
            try:
                self._outcome = self._read()
            except AgentcageError as exc:
                self._outcome = exc
        if isinstance(self._outcome, AgentcageError):
            raise self._outcome
        return self._outcome

    def _read(self) -> CheckedConfig:
        try:
            if self._child is None:
                raise self._failed or OSError("not started")
            returncode, out, err = finish_check(self._child, _CHECK_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"the config check of {self._path} could not run: {exc}") from None
        found = _answer(out) if returncode == 0 else None
        if isinstance(found, dict) and isinstance(found.get("error"), dict):
            raise raised_error(found["error"], ConfigError)
        checked = _checked(found)
        if checked is None:
            tail = (err.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(
                f"the config check of {self._path} failed (exit status {returncode}): {tail}",
                hint="the proxy does not start until the config can be checked (fail closed)",
            )
        return checked


class _ConfigUnpickler(pickle.Unpickler):
    """Restores snapshots and the plain values in them, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _MODULES or (module == "builtins" and name in _PLAIN_BUILTINS):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a config")


def _answer(out: bytes) -> Any:
    try:
        return _ConfigUnpickler(io.BytesIO(out)).load()
    except Exception:  # any unreadable answer is the same failure
        return None


def _readable(out: bytes) -> bool:
    """Whether `out` is an answer `ConfigCheck` reads: a config or a check's error."""
    found = _answer(out)
    if isinstance(found, dict) and isinstance(found.get("error"), dict):
        return True
    return _checked(found) is not None


def _checked(answer: Any) -> CheckedConfig | None:
    if not isinstance(answer, dict) or answer.get("format") != _FORMAT:
        return None
    version, config, warnings = answer.get("version"), answer.get("config"), answer.get("warnings")
    if not (isinstance(version, str) and isinstance(config, Snapshot)):
        return None
    if snapshot_kind(config) != "CageConfig":
        return None
    if not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
        return None
    # Read like the model it was made of (config/snapshot.py): the type serving code names.
    return CheckedConfig(version, cast("CageConfig", config), tuple(warnings))


def answer(path: Path, *, shown_as: Path | None = None) -> bytes:
    """What the check of `path` prints. `shown_as`: the path the proxy reads the same
    bytes at, if not `path` (config/load.py): the answer is then the one it would get."""
    from agentcage.config import check_config, policy_version

    version = policy_version(path)  # first: never newer than what is loaded
    found: dict[str, Any]
    try:
        config, warnings = check_config(path, shown_as=shown_as)
    except AgentcageError as exc:
        found = {"error": error_answer(exc)}
    else:
        found = {
            "format": _FORMAT,
            "version": version,
            "config": snapshot_of(config),
            "warnings": [str(w) for w in warnings],
        }
    return pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m {CHECK_MODULE} FILE", file=sys.stderr)
        return 64
    sys.stdout.buffer.write(answer(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
