"""The objects `kube render` leaves out: the CA, the secret values and their fingerprints.

They hold key material or are made fresh, so they are neither printed for review nor
committed: `kube apply` makes them (and `secret set` replaces the secrets'), and the
end-to-end test plays them with Podman. Each goes where the Podman cage mounts its host
file, and no further:

* Secret `<cage>-ca`: the CA key and certificate in mitmproxy's confdir layout (ca.py),
  plus mitmproxy's DH parameters, which it would otherwise write into the read-only
  mount; proxy only;
* ConfigMap `<cage>-ca-cert`: the CA certificate, for the agent;
* Secret `<cage>-secrets`: one key per `secret_injection` value (the files `proxy run
  --secrets-dir` reads), and the decoy seed when `secrets.canaries` is on; proxy only;
* Secret `<cage>-fingerprints`: keyed fingerprints of the protected values, the file
  `dns run --name-fingerprints` reads (the DNS pod never sees a value); DNS only;
* ConfigMap `<cage>-upstream-ca`: extra CAs the proxy trusts upstream, when given.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentcage.cage import ca
from agentcage.cage.contract import CANARY_SEED_ENV, NAME_FINGERPRINTS
from agentcage.cage.kube.cluster_spec import names_of
from agentcage.cage.kube.manifests import CA_CERT_KEY, UPSTREAM_CA_KEY
from agentcage.config.schema import CageConfig
from agentcage.policy.leaks.fingerprints import fingerprint_values
from agentcage.policy.leaks.protected import protected_values
from agentcage.proxy.confdir import DHPARAM, dhparam_pem


@dataclass(frozen=True)
class CageMaterial:
    """What the material objects are made of; `make` creates a new CA."""

    ca_key_and_cert: bytes  # mitmproxy-ca.pem: key, then certificate
    ca_cert: bytes
    secrets: Mapping[str, str]
    canary_seed: str | None = None
    upstream_ca: bytes | None = None

    @classmethod
    def make(
        cls, cage: str, secrets: Mapping[str, str], canary_seed: str | None = None
    ) -> CageMaterial:
        key_pem, cert_pem = ca.make_ca(cage)
        return cls(key_pem + cert_pem, cert_pem, dict(secrets), canary_seed)


def material_manifests(
    config: CageConfig, namespace: str, material: CageMaterial
) -> list[dict[str, Any]]:
    """The CA, secrets and fingerprints objects of the cage, in apply order."""
    names = names_of(config)
    secret_values = dict(material.secrets)
    if material.canary_seed is not None:
        secret_values[CANARY_SEED_ENV] = material.canary_seed
    # The same values the proxy fingerprints from its mounted files at start.
    values = protected_values(config, secret_values, {})
    fingerprints = fingerprint_values(values).to_json()
    objects = [
        _secret(names.ca, namespace, names.labels(), {
            ca.KEY_AND_CERT: material.ca_key_and_cert,
            ca.CERT: material.ca_cert,
            DHPARAM: dhparam_pem(),
        }),
        _config_map(names.ca_cert, namespace, names.labels(), {CA_CERT_KEY: material.ca_cert}),
        _secret(names.secrets, namespace, names.labels(),
                {k: v.encode() for k, v in secret_values.items()}),
        _secret(names.fingerprints, namespace, names.labels(),
                {posixpath.basename(NAME_FINGERPRINTS): fingerprints.encode()}),
    ]  # fmt: skip
    if material.upstream_ca is not None:
        upstream = {UPSTREAM_CA_KEY: material.upstream_ca}
        objects.append(_config_map(names.upstream_ca, namespace, names.labels(), upstream))
    return objects


def _secret(
    name: str, namespace: str, labels: dict[str, str], data: Mapping[str, bytes]
) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v).decode("ascii") for k, v in data.items()}
    return {**_object("Secret", name, namespace, labels, encoded), "type": "Opaque"}


def _config_map(
    name: str, namespace: str, labels: dict[str, str], data: Mapping[str, bytes]
) -> dict[str, Any]:
    text = {k: v.decode("ascii") for k, v in data.items()}
    return _object("ConfigMap", name, namespace, labels, text)


def _object(
    kind: str, name: str, namespace: str, labels: dict[str, str], data: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": dict(sorted(data.items())),
    }
