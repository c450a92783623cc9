"""`proxy run --name-fingerprints`: the file DNS reads, written from the proxy's values."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agentcage.config import load_config
from agentcage.errors import ConfigError
from agentcage.policy.leaks.fingerprints import NameFingerprints
from agentcage.proxy.namefingerprints import NameFingerprintsFile
from agentcage.proxy.runtime import Sources

KEY = "sk-ant-api03-" + "Q7vX2mR9kLp4Tz8Wc1Nb6Hy3Jd5Fs0Ga" * 2 + "AA"


def _sources(tmp_path: Path) -> Sources:
    config = tmp_path / "cage.yaml"
    config.write_text(
        "name: fp\n"
        "container: {image: 'docker.io/library/python:3.12-slim'}\n"
        "secret_injection: [{env: ANTHROPIC_API_KEY, inject_to: [api.anthropic.com]}]\n"
        "secrets: {canaries: [{env: OPENAI_API_KEY, kind: openai}]}\n"
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ANTHROPIC_API_KEY").write_text(KEY + "\n")
    return Sources(config_path=config, secrets_dir=secrets)


def test_publish_writes_fingerprints_of_the_values_only(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    target = tmp_path / "shared" / "names.json"
    NameFingerprintsFile(target, sources).publish(load_config(sources.config_path))
    text = target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "Q7vX2mR9" not in text and "q7vx2mr9" not in text
    fingerprints = NameFingerprints.from_json(text)
    assert fingerprints.match(KEY.lower().replace("-", "") + ".x.example") == (
        "injected:ANTHROPIC_API_KEY"
    )
    assert fingerprints.skipped == ()
    rules = {rule for table in fingerprints.tables.values() for rule in table.values()}
    assert rules == {"injected:ANTHROPIC_API_KEY", "canary:OPENAI_API_KEY"}  # no placeholder


def test_an_unwritable_target_is_a_config_error_and_a_failed_reload_removes_the_file(
    tmp_path: Path,
) -> None:
    sources = _sources(tmp_path)
    config = load_config(sources.config_path)
    (tmp_path / "blocker").write_text("")
    with pytest.raises(ConfigError, match="cannot write the name fingerprints"):
        NameFingerprintsFile(tmp_path / "blocker" / "names.json", sources).publish(config)
    target = tmp_path / "names.json"
    published = NameFingerprintsFile(target, sources)
    published.publish(config)
    (tmp_path / "secrets" / "ANTHROPIC_API_KEY").unlink()
    (tmp_path / "secrets" / "ANTHROPIC_API_KEY").mkdir()  # unreadable as a secret now
    published.republish(config)
    assert not target.exists()  # stale values are not left for DNS to trust
