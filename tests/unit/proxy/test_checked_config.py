"""`proxy run`'s config check in a child: the same errors as in-process, and an answer
that is read strictly (fail closed)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from agentcage.config import check_config
from agentcage.config.snapshot import snapshot_of
from agentcage.errors import AgentcageError, ConfigError
from agentcage.proxy import checked_config
from agentcage.proxy.checked_config import ConfigCheck

GOOD = (
    '{"name": "ok", "container": {"image": "localhost/agent:1"}, "domains": {"allow": ["a.test"]}}'
)


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace('"ok"', '"Not A Name"'),  # the schema refuses it
        "name: [unclosed\n",  # YAML that does not parse
        GOOD.replace('"domains"', '"domainz"'),  # an unknown key, with a did-you-mean
    ],
)
def test_a_bad_config_fails_with_the_error_check_config_raises(text: str, tmp_path: Path) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(text)
    with pytest.raises(AgentcageError) as in_process:
        check_config(path)
    with pytest.raises(AgentcageError) as in_child:
        ConfigCheck(path).result()
    # InvalidConfig is a ConfigError of config/load.py: raised again as one (child_check.py).
    assert isinstance(in_child.value, ConfigError) and isinstance(in_process.value, ConfigError)
    assert in_child.value.message == in_process.value.message
    assert in_child.value.hint == in_process.value.hint
    assert in_child.value.exit_code == in_process.value.exit_code == ConfigError.exit_code


def test_a_missing_file_fails_as_before(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        ConfigCheck(tmp_path / "absent.json").result()


def test_a_good_config_comes_back_with_its_version_and_warnings(tmp_path: Path) -> None:
    path = tmp_path / "cage.json"
    injection = '[{"env": "KEY", "inject_to": ["a.test"], "places": ["query"]}]'
    network = '{"allow_cidrs": ["192.0.2.0/24", "2001:db8::/32"]}'  # ipaddress networks
    extra = f'"secret_injection": {injection}, "network": {network}'
    path.write_text(GOOD.replace("}}", f"}}, {extra}}}"))
    checked = ConfigCheck(path).result()
    config, warnings = check_config(path)
    assert checked.config == snapshot_of(config)
    assert checked.warnings == tuple(str(w) for w in warnings) and checked.warnings
    assert checked.version and len(checked.version) == 12
    assert [str(n) for n in checked.config.network.allow_cidrs] == ["192.0.2.0/24", "2001:db8::/32"]


def test_an_answer_naming_anything_but_a_snapshot_is_refused() -> None:
    # A pickle that would call a function on load: refused before anything runs.
    hostile = pickle.dumps({"format": 1, "version": "v", "config": print, "warnings": []})
    assert checked_config._answer(hostile) is None
    assert checked_config._answer(b"not a pickle") is None


def test_a_check_that_answers_nonsense_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cage.json"
    path.write_text(GOOD)
    monkeypatch.setattr(checked_config, "CHECK_MODULE", "json.tool")  # prints no pickle
    with pytest.raises(ConfigError, match=r"config check of .* failed"):
        ConfigCheck(path).result()
