"""Real secret values, read from the proxy's environment or a secrets directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.errors import ConfigError

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


MAX_SECRET_BYTES = 64 * 1024


def load_secrets(
    config: CageConfig,
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
) -> tuple[dict[str, str], list[str]]:
    """(`env` name -> real value, names not found) for the `secret_injection` rules.

    A file named like the rule's `env` in `secrets_dir` wins over the environment
    (container secrets are mounted as files). A secret that is not found is not an
    error here: the policy then blocks its placeholder everywhere, and the caller
    warns, so one missing key does not take the whole cage offline.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    missing: list[str] = []
    for rule in config.secret_injection:
        value = _from_dir(secrets_dir, rule.env) if secrets_dir else None
        if value is None:
            value = env.get(rule.env)
        if value:
            values[rule.env] = value
        else:
            missing.append(rule.env)
    return values, missing


def _from_dir(secrets_dir: Path, name: str) -> str | None:
    path = secrets_dir / name
    try:
        if path.stat().st_size > MAX_SECRET_BYTES:
            raise ConfigError(f"{path}: larger than 64 KiB; is this really a secret?")
        # Files written by editors or `echo` end in a newline that is not part of the value.
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
