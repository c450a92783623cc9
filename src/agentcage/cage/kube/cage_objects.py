"""Everything `kube apply` sends for one cage: the rendered manifests (manifests.py) and the
material objects (material.py: the CA, the secret values, their fingerprints).

The material already in the cluster is reused: the CA from the CA Secret, the values and
the decoy seed from the secrets Secret. A re-apply therefore sends the same objects, and
the agent keeps the CA it trusts and the decoys in its environment; only a first apply
makes a CA and a seed. `secret set` and `secret rm` pass the changed values, so the
secrets Secret and the DNS pod's fingerprints change together.
"""

from __future__ import annotations

import secrets as token
from collections.abc import Mapping

from agentcage.cage import ca
from agentcage.cage.contract import CANARY_SEED_ENV
from agentcage.cage.kube.cluster import KINDS, ClusterApi, Manifest, secret_values
from agentcage.cage.kube.cluster_spec import names_of
from agentcage.cage.kube.manifests import render_manifests
from agentcage.cage.kube.material import CageMaterial, material_manifests
from agentcage.config.schema import CageConfig


def cage_objects(
    api: ClusterApi,
    config: CageConfig,
    namespace: str,
    values: Mapping[str, str] | None = None,
) -> list[Manifest]:
    """The cage's objects; `values` replaces the secret values the cluster holds."""
    names = names_of(config)
    held = secret_values(api.get(KINDS["Secret"], namespace, names.secrets))
    seed = held.pop(CANARY_SEED_ENV, None)
    # Made once, then kept in the Secret: the agent's decoys stay the same across applies.
    seed = (seed or token.token_hex(32)) if config.secrets.canaries else None
    chosen = dict(held if values is None else values)
    chosen.pop(CANARY_SEED_ENV, None)
    ca_files = secret_values(api.get(KINDS["Secret"], namespace, names.ca))
    if ca.KEY_AND_CERT in ca_files and ca.CERT in ca_files:
        material = CageMaterial(
            ca_files[ca.KEY_AND_CERT].encode(), ca_files[ca.CERT].encode(), chosen, seed
        )
    else:
        material = CageMaterial.make(config.name, chosen, seed)
    rendered = render_manifests(config, namespace=namespace, canary_seed=seed)
    return [*rendered, *material_manifests(config, namespace, material)]
