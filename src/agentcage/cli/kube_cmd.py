"""`agentcage kube render`: one cage's Kubernetes manifests (docs/kubernetes.md)."""

from __future__ import annotations

from pathlib import Path

import click

from agentcage.cage.kube.kustomize import kustomize_files, write_kustomize
from agentcage.cage.kube.manifest_yaml import to_yaml
from agentcage.cage.kube.manifests import render_manifests
from agentcage.cli import kube_cluster_cmd
from agentcage.cli.options import config_file_option, namespace_option
from agentcage.config.load import load_config


@click.group()
def kube() -> None:
    """Deploy a cage to a Kubernetes cluster."""


@kube.command()
@config_file_option()
@namespace_option
@click.option(
    "--kustomize",
    "kustomize_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write a kustomize base into this directory instead of printing.",
)
@click.option(
    "--upstream-ca",
    is_flag=True,
    help="The proxy also trusts the CAs in the cage's upstream-CA ConfigMap.",
)
def render(
    config_file: Path, namespace: str | None, kustomize_dir: Path | None, upstream_ca: bool
) -> None:
    """Print the cage's manifests: sidecar Deployments and Services, the agent, policies.

    The output is stable (sorted keys, no timestamps) so it can be committed and
    reviewed. The CA and the secrets' Secrets are not part of it: `kube apply` makes them.
    """
    config = load_config(config_file)
    ns = namespace or config.kubernetes.namespace
    manifests = render_manifests(config, namespace=ns, upstream_ca=upstream_ca)
    if kustomize_dir is None:
        click.echo(to_yaml(manifests), nl=False)
        return
    for path in write_kustomize(kustomize_dir, kustomize_files(config.name, ns, manifests)):
        click.echo(f"wrote {path}")


# apply, delete and status drive a cluster; they live beside this module.
for _command in (kube_cluster_cmd.apply, kube_cluster_cmd.delete, kube_cluster_cmd.status):
    kube.add_command(_command)
