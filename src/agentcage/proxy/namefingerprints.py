"""`proxy run --name-fingerprints FILE`: fingerprints of the protected values, for DNS.

The DNS sidecar refuses names that carry a protected value but must never hold one,
so the proxy publishes keyed fingerprints of them (`policy.leaks.fingerprints`) in a
file the sidecar reads. Written at start and after every reload, replaced atomically
(the sidecar reads the old file or the new one, never half of one), with a new key
each time.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.atomicfile import write_atomic
from agentcage.errors import ConfigError, PolicyError
from agentcage.policy.leaks.fingerprints import fingerprint_values
from agentcage.policy.leaks.protected import protected_values
from agentcage.proxy.runtime import Sources
from agentcage.proxy.secret_values import load_secrets

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


logger = logging.getLogger(__name__)


class NameFingerprintsFile:
    def __init__(self, path: Path, sources: Sources) -> None:
        self.path = path
        self._sources = sources

    def publish(self, config: CageConfig) -> None:
        """Write the fingerprints of `config`'s values; `ConfigError` if that fails."""
        try:
            secrets, _missing = load_secrets(config, secrets_dir=self._sources.secrets_dir)
            base_dir = self._sources.config_path.resolve().parent
            values = protected_values(config, secrets, os.environ, base_dir)
            fingerprints = fingerprint_values(values)
            write_atomic(self.path, fingerprints.to_json(), 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the name fingerprints {self.path}: {exc.strerror}",
                hint="make its directory writable for the proxy",
            ) from exc
        except PolicyError as exc:
            raise ConfigError(f"name fingerprints: {exc.message}", hint=exc.hint) from exc
        if fingerprints.skipped:
            logger.warning(
                "too short to look for in DNS names: %s", ", ".join(fingerprints.skipped)
            )

    def republish(self, config: CageConfig) -> None:
        """After a reload: a stale file is removed, so DNS answers SERVFAIL (fail closed)."""
        try:
            self.publish(config)
        except ConfigError as exc:
            logger.error("%s; removing the stale file", exc.diagnostics())
            with contextlib.suppress(OSError):
                self.path.unlink()
