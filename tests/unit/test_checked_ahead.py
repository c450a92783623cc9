"""A sidecar check's answer stored ahead (checked_ahead.py): used, with no child started,
only for the same bytes and the same code, and read as a child's output is; anything
else runs the real check and gives its own result or error.

The checks here start a new Python (fork=False) where one runs: a fork of the test
process is what child_check's own tests and the sidecars' integration tests look at.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcage import checked_ahead, child_check
from agentcage.cage.layout import store_check_answers
from agentcage.checked_ahead import answer_path, code_identity, stored_answer
from agentcage.config import load_config, policy_version
from agentcage.dns import config_check
from agentcage.dns.plan import CHECK_MODULE as DNS_CHECK
from agentcage.dns.plan import checked_plan
from agentcage.errors import AgentcageError, ConfigError
from agentcage.proxy import checked_config
from agentcage.proxy.checked_config import CHECK_MODULE as PROXY_CHECK
from agentcage.proxy.checked_config import ConfigCheck

_CONFIG = {
    "name": "ahead",
    "container": {"image": "localhost/agent:1"},
    "domains": {"allow": ["a.test"]},
    "dns_servers": ["192.0.2.53"],
    # A warning that names the file: the answer must name it where the sidecar reads it.
    "secret_injection": [{"env": "KEY", "inject_to": ["a.test"], "places": ["query"]}],
}
MODULES = [PROXY_CHECK, DNS_CHECK]


def _write(path: Path, **changes: Any) -> Path:
    path.write_text(json.dumps({**_CONFIG, **changes}, indent=2) + "\n")
    return path


class Started:
    """Counts the checks that really ran (a new Python) and refuses forks outright."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = child_check._popen

        def popen(*args: Any) -> subprocess.Popen[bytes]:
            self.count += 1
            return real(*args)

        def no_fork(*args: Any) -> Any:
            raise AssertionError("a fork of the test process")

        monkeypatch.setattr(child_check, "_popen", popen)
        monkeypatch.setattr(child_check, "forked_check", no_fork)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    return Started(monkeypatch)


def _proxy(path: Path) -> Any:
    checked = ConfigCheck(path, ahead=True).result()
    return checked.version, checked.config, checked.warnings


def _dns(path: Path) -> Any:
    return checked_plan(path, ahead=True)


READERS = {PROXY_CHECK: _proxy, DNS_CHECK: _dns}


def _real(module: str, path: Path) -> Any:
    """What the check itself answers, in a child: the stored answer set aside meanwhile."""
    stored = answer_path(path, module)
    aside = stored.with_name(stored.name + ".aside")
    if stored.exists():
        stored.rename(aside)
    try:
        return READERS[module](path)
    finally:
        if aside.exists():
            aside.rename(stored)


def _rewrite(path: Path, module: str, header: dict[str, Any], out: bytes) -> None:
    body = base64.b64encode(out)
    answer_path(path, module).write_bytes(json.dumps(header).encode() + b"\n" + body + b"\n")


def _stored(path: Path, module: str) -> tuple[dict[str, Any], bytes]:
    header, _, body = answer_path(path, module).read_bytes().partition(b"\n")
    return json.loads(header), base64.b64decode(body)


@pytest.mark.parametrize("module", MODULES)
def test_a_stored_answer_is_what_the_child_prints(module: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "cage.json")
    assert store_check_answers(path, path) == MODULES
    assert stored_answer(path, module) == _child_answer(module, path)


@pytest.mark.parametrize("module", MODULES)
def test_a_matching_answer_is_used_and_no_check_starts(
    module: str, tmp_path: Path, started: Started
) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    ahead = READERS[module](path)
    assert started.count == 0
    assert ahead == _real(module, path) and started.count == 1


def test_the_answer_names_the_file_where_the_sidecar_reads_it(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    path = _write(tmp_path / "host" / "config.yaml")
    inside = tmp_path / "etc-agentcage" / "config.yaml"  # the sidecar's CONFIG_FILE
    inside.parent.mkdir()
    inside.write_bytes(path.read_bytes())
    store_check_answers(path, inside)
    for module in MODULES:
        assert stored_answer(path, module) == _child_answer(module, inside)
    warnings = pickle.loads(stored_answer(path, PROXY_CHECK) or b"")["warnings"]
    assert warnings and all(w.startswith(f"{inside}:") for w in warnings)


def test_the_stored_version_is_the_files_policy_version(tmp_path: Path) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    assert _proxy(path)[0] == _dns(path)[0] == policy_version(path)


@pytest.mark.parametrize("module", MODULES)
def test_a_changed_config_byte_runs_the_check(
    module: str, tmp_path: Path, started: Started
) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    before = READERS[module](path)
    _write(path, domains={"allow": ["b.test"]})  # rewritten without new answers
    assert stored_answer(path, module) is None
    found = READERS[module](path)
    assert started.count == 1
    assert "b.test" in repr(found) and found != before


@pytest.mark.parametrize("module", MODULES)
def test_another_codes_answer_runs_the_check(module: str, tmp_path: Path, started: Started) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    header, out = _stored(path, module)
    _rewrite(path, module, {**header, "identity": "0" * 64}, out)
    assert READERS[module](path) == _real(module, path)
    assert started.count == 2


def test_the_identity_covers_every_py_file_of_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "agentcage"
    (package / "config").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config" / "load.py").write_text("A = 1\n")
    monkeypatch.setattr(checked_ahead, "_PACKAGE", package)
    first = code_identity()
    (package / "config" / "load.py").write_text("A = 2\n")
    changed = code_identity()
    (package / "config" / "load.py").write_text("A = 1\n")
    (package / "new.py").write_text("")
    added = code_identity()
    assert first is not None and len({first, changed, added}) == 3


def test_no_pydantic_version_no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checked_ahead, "_VALIDATORS", ("pydantic", "no_such_package_here"))
    assert code_identity() is None


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("cut", [1, 40, -1])
def test_a_cut_answer_file_runs_the_check(
    module: str, cut: int, tmp_path: Path, started: Started
) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    stored = answer_path(path, module)
    stored.write_bytes(stored.read_bytes()[:cut])
    assert READERS[module](path) == _real(module, path)
    assert started.count == 2


class _System:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch pwned",))


def test_a_hostile_answer_with_a_matching_key_runs_the_check(
    tmp_path: Path, started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    header, _ = _stored(path, PROXY_CHECK)
    hostile = pickle.dumps({"format": 1, "version": "v", "config": _System(), "warnings": []})
    _rewrite(path, PROXY_CHECK, {**header, "answer_sha256": _sha(hostile)}, hostile)
    called: list[Any] = []
    monkeypatch.setattr(os, "system", called.append)
    assert stored_answer(path, PROXY_CHECK) == hostile  # the key matches: the reader refuses
    assert _proxy(path) == _real(PROXY_CHECK, path)
    assert started.count == 2 and not called


def test_a_dns_answer_that_is_no_plan_runs_the_check(tmp_path: Path, started: Started) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    header, out = _stored(path, DNS_CHECK)
    damaged = out.replace(b'"version": 1', b'"version": 2')
    _rewrite(path, DNS_CHECK, {**header, "answer_sha256": _sha(damaged)}, damaged)
    assert _dns(path) == _real(DNS_CHECK, path)
    assert started.count == 2


def _child_answer(module: str, path: Path) -> bytes:
    """What `module`'s check child prints for `path`, run as a sidecar runs it."""
    return subprocess.run(
        [sys.executable, "-m", module, str(path)], capture_output=True, check=True
    ).stdout


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("module", MODULES)
def test_a_forged_success_for_other_bytes_does_not_pass_an_invalid_config(
    module: str, tmp_path: Path
) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    _write(path, name="Not A Name")  # invalid; the answers claim success for the old bytes
    with pytest.raises(AgentcageError) as in_process:
        load_config(path)
    with pytest.raises(AgentcageError) as ahead:
        READERS[module](path)
    assert ahead.value.message == in_process.value.message
    assert isinstance(ahead.value, ConfigError)


def test_a_dns_answer_made_with_this_machines_resolvers_needs_the_same_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cage.json"
    path.write_text(json.dumps({k: v for k, v in _CONFIG.items() if k != "dns_servers"}))
    monkeypatch.setattr("agentcage.config.host.host_resolvers", lambda *_: ["192.0.2.1"])
    store_check_answers(path, path)
    assert _stored(path, DNS_CHECK)[0]["resolvers"] == ["192.0.2.1"]
    assert _stored(path, PROXY_CHECK)[0]["resolvers"] is None  # the proxy's does not use them
    assert stored_answer(path, DNS_CHECK) is not None
    monkeypatch.setattr("agentcage.config.host.host_resolvers", lambda *_: ["192.0.2.2"])
    assert stored_answer(path, DNS_CHECK) is None
    assert stored_answer(path, PROXY_CHECK) is not None


def test_a_config_validated_against_the_environment_gets_no_answers(tmp_path: Path) -> None:
    for container in (
        {"image": "localhost/agent:1", "env": {"A": "b"}},
        {"image": "localhost/agent:1", "volumes": ["/tmp:/data"]},
    ):
        path = _write(tmp_path / "cage.json", container=container)
        assert store_check_answers(path, path) == []
        assert not any(answer_path(path, m).exists() for m in MODULES)


def test_the_sidecar_configs_answer_reads_neither_directory_nor_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `sidecar_config`'s container section is the image alone: validating it reads no
    # `base_dir` and no variable, so the CLI's answer is the sidecar's.
    path = tmp_path / "cage.json"
    path.write_text(json.dumps({k: v for k, v in _CONFIG.items() if k != "secret_injection"}))
    here = checked_config.answer(path, shown_as=path)
    monkeypatch.setattr(os, "environ", {"HOME": "/elsewhere"})
    there = checked_config.answer(path, shown_as=Path("/nonexistent/etc/agentcage/config.yaml"))
    assert here == there
    assert config_check.answer(path) == config_check.answer(
        path, shown_as=Path("/nonexistent/etc/agentcage/config.yaml")
    )


def test_reloads_never_use_a_stored_answer(tmp_path: Path, started: Started) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    ConfigCheck(path).result()
    checked_plan(path)
    assert started.count == 2


def test_an_answer_file_is_written_like_the_config(tmp_path: Path) -> None:
    path = _write(tmp_path / "cage.json")
    path.chmod(0o644)
    store_check_answers(path, path)
    for module in MODULES:
        assert answer_path(path, module).stat().st_mode & 0o777 == 0o644
        assert answer_path(path, module).parent == path.parent


def test_a_stored_answer_its_reader_trips_on_runs_the_check(
    tmp_path: Path, started: Started
) -> None:
    path = _write(tmp_path / "cage.json")
    store_check_answers(path, path)
    header, _ = _stored(path, DNS_CHECK)
    deep = b"[" * 100_000 + b"]" * 100_000  # json's RecursionError, not a ValueError
    _rewrite(path, DNS_CHECK, {**header, "answer_sha256": _sha(deep)}, deep)
    assert _dns(path) == _real(DNS_CHECK, path)
    assert started.count == 2


def test_the_stored_answers_are_text(tmp_path: Path) -> None:
    # A microVM cage's state is copied into its guest file by file as UTF-8 text
    # (vm/guest_cage.py); the proxy's answer, a pickle, made that copy fail.
    path = _write(tmp_path / "cage.json")
    assert store_check_answers(path, path) == MODULES
    for module in MODULES:
        answer_path(path, module).read_bytes().decode("ascii")
        assert stored_answer(path, module) == _stored(path, module)[1]
