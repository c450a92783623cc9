"""`agentcage kube apply|delete|status`: drive a cluster (docs/kubernetes.md).

The commands join the `kube` group of kube_cmd.py; the work is in cage/kube/kube_cages.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from agentcage.cage.kube.cluster import ClusterTarget
from agentcage.cage.kube.kube_cages import DEFAULT_TIMEOUT_S, KubeCages, KubeStatus
from agentcage.cli.options import config_file_option, namespace_option


def _cages() -> KubeCages:
    return KubeCages(progress=lambda line: click.echo(line, err=True))


@click.command()
@config_file_option()
@namespace_option
@click.option("--context", default=None, help="Kubeconfig context (default: the current one).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).",
)
@click.option(
    "--kubectl",
    "kubectl",
    type=click.Path(dir_okay=False),
    default=None,
    help="Run this kubectl for every request instead of the built-in client.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for the proxy, DNS and agent to become ready.",
)
@click.option("--no-wait", is_flag=True, help="Return once the objects are applied.")
@click.option(
    "--create-namespace",
    is_flag=True,
    help="Create the namespace when it is missing (labelled as the cage's: `kube delete` "
    "removes it).",
)
@click.option(
    "--force-conflicts",
    is_flag=True,
    help="Take over fields another writer (kubectl edit, a controller) changed.",
)
def apply(
    config_file: Path,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    kubectl: str | None,
    timeout_s: float,
    no_wait: bool,
    create_namespace: bool,
    force_conflicts: bool,
) -> None:
    """Create or update the cage on a cluster, proxy and DNS first, agent last.

    Objects are sent by server-side apply (field manager `agentcage`) and the cage is
    recorded with its namespace and context, so `kube status`, `kube delete`, `domain`
    and `secret` find it later.
    """
    target = ClusterTarget(context=context, kubeconfig=kubeconfig, kubectl=kubectl)
    name, record = _cages().deploy(
        config_file,
        namespace,
        target,
        force=force_conflicts,
        create_namespace=create_namespace,
        timeout_s=None if no_wait else timeout_s,
    )
    done = "applied" if no_wait else "applied and ready"
    click.echo(f"cage {name} {done} in namespace {record.namespace} (context {record.context})")


@click.command()
@click.argument("name")
@click.option("--missing-ok", is_flag=True, help="Succeed when nothing of the cage is left.")
def delete(name: str, missing_ok: bool) -> None:
    """Delete every object labelled as cage NAME (agent first) and forget it."""
    deleted = _cages().delete(name, missing_ok=missing_ok)
    for line in deleted:
        click.echo(f"deleted {line}", err=True)
    click.echo(f"cage {name} deleted ({len(deleted)} objects)")


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools (docs/kubernetes.md).")
def status(name: str, as_json: bool) -> None:
    """Each workload's rollout: desired, ready and updated replicas, conditions, pods."""
    report = _cages().status(name)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    click.echo(_text(report), nl=False)


def _text(report: KubeStatus) -> str:
    state = "ready" if report.ready else "NOT READY"
    lines = [
        f"cage {report.name}: {state}; namespace {report.namespace}, "
        f"context {report.context} ({report.server})"
    ]
    for w in report.workloads:
        role = f" [{w.role}]" if w.role else ""
        lines.append(
            f"  {w.kind} {w.name}{role}: {w.ready}/{w.desired} ready, {w.updated} updated, "
            f"{w.available} available"
        )
        lines += [
            f"    pod {p.name}: {p.phase}{' ready' if p.ready else ''}, "
            f"{p.restarts} restarts" + (f", waiting: {p.waiting}" if p.waiting else "")
            for p in w.pods
        ]
        lines += [
            f"    {c['type']}={c['status']} {c['reason']}: {c['message']}"
            for c in w.conditions
            if c["status"] != "True"
        ]
    if not report.workloads:
        lines.append("  no workloads")
    return "\n".join(lines) + "\n"
