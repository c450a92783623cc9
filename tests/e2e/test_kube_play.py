"""The Kubernetes topology run for real: `podman kube play` on `kube render`'s objects.

No cluster runs on these machines, so the session host's Podman 5 plays the rendered
objects: the Pods (the sidecar Deployments' pod templates, the agent rendered as a bare
Pod), the sidecars' ConfigMap and the CA, secrets and fingerprints objects `kube apply`
makes. Each role is its own pod. Podman networks stand in for the NetworkPolicies, as
they do for a Podman cage: an internal network holds the three pods, with the fixed
addresses the manifests name for the DNS and proxy Services, and only the sidecars also
join the fake internet's network. Then the agent's scenarios run in its pod
(agent_scenarios.py, as in test_cage.py). The objects are played as rendered but for the
agent's test mounts (the scenario script and its libraries, as hostPath volumes).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcage.cage.images import AGENT_DEBIAN_IMAGE, AGENT_DEBIAN_PACKAGES, ImageBuilder
from agentcage.cage.kube.manifest_yaml import to_yaml
from agentcage.cage.kube.manifests import render_manifests
from agentcage.cage.kube.material import CageMaterial, material_manifests
from agentcage.cage.kube.object_names import KubeNames
from agentcage.cage.podman import SubprocessRunner
from agentcage.config import load_config
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import (
    BUILD_ENV,
    INTERNET_IP,
    INTERNET_NETWORK,
    INTERNET_SUBNET,
    REPO,
    Harness,
    Internet,
)

CAGE = "kp"
NAMES = KubeNames(CAGE)
NETWORK = "agentcage-kp-int"  # stands for the agent's NetworkPolicy: no route out
SUBNET = "10.248.0.0/24"
DNS_IP, PROXY_IP, AGENT_IP = "10.248.0.2", "10.248.0.3", "10.248.0.100"
PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"


def config(agent_image: str, proxy: str, dns: str) -> dict[str, Any]:
    return {
        "name": CAGE,
        "container": {
            "image": agent_image,
            "command": ["sleep", "infinity"],
            "user": "1000:1000",
            "tmpfs": ["/tmp:rw,size=16m"],
        },
        "secret_injection": [
            {"env": "ANTHROPIC_API_KEY", "inject_to": ["anthropic.com"], "places": ["headers"]}
        ],
        "domains": {"allow": ["anthropic.com", "github.com"]},
        "dns_servers": [INTERNET_IP],
        "network": {"allow_cidrs": [INTERNET_SUBNET]},
        "kubernetes": {
            "agent_kind": "Pod",
            "images": {"proxy": proxy, "dns": dns},
            "service_cidr": SUBNET,
            "dns_service_ip": DNS_IP,
            "proxy_service_ip": PROXY_IP,
        },
    }


def as_pod(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod a Deployment runs: its template, named after it."""
    if workload["kind"] == "Pod":
        return workload
    template = workload["spec"]["template"]
    metadata = {**workload["metadata"], "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def with_test_mounts(agent: dict[str, Any]) -> dict[str, Any]:
    """The scenario script and its libraries, read-only: test scaffolding, not the cage."""
    spec = agent["spec"]
    site = REPO / ".venv/lib/python3.11/site-packages"
    for name, source, target in (("e2e", REPO / "tests/e2e", "/e2e"), ("site", site, "/e2e-site")):
        spec["volumes"].append(
            {"name": name, "hostPath": {"path": str(source), "type": "Directory"}}
        )
        mount = {"name": name, "mountPath": target, "readOnly": True}
        spec["containers"][0]["volumeMounts"].append(mount)
    return agent


def container(role: str) -> str:
    """The name `kube play` gives the one container of `role`'s pod."""
    return f"{NAMES.workload(role)}-{NAMES.workload(role)}"


def logs(harness: Harness, role: str) -> str:
    """The container's stdout and stderr (`podman logs` replays each on its own stream)."""
    done = subprocess.run(
        ["podman", "exec", harness.name, "podman", "logs", container(role)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def wait_listening(harness: Harness, role: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if "listening on" in logs(harness, role):
            return
        time.sleep(0.5)
    state = harness.exec("podman", "ps", "-a", "--format", "{{.Names}} {{.Status}}", check=False)
    raise AssertionError(f"{role} never listened:\n{logs(harness, role)}\n{state}")


@pytest.fixture(scope="module")
def played(harness: Harness, internet: Internet) -> Iterator[dict[str, Path]]:
    builder = ImageBuilder(SubprocessRunner(env=BUILD_ENV))
    sidecars = builder.sidecar_images("debian")
    agent_image = builder.debian_image(
        "agentcage-agent-debian", AGENT_DEBIAN_PACKAGES, alias=AGENT_DEBIAN_IMAGE
    )
    path = harness.shared / "kube.yaml"
    path.write_text(json.dumps(config(agent_image, sidecars.proxy, sidecars.dns)))
    cage = load_config(path)
    rendered = render_manifests(cage, upstream_ca=True)
    material = CageMaterial.make(CAGE, {"ANTHROPIC_API_KEY": REAL_KEY})
    material = CageMaterial(
        material.ca_key_and_cert, material.ca_cert, material.secrets,
        upstream_ca=internet.ca_pem.read_bytes(),
    )  # fmt: skip
    objects = {(m["kind"], m["metadata"]["name"]): m for m in rendered}
    objects.update(
        {(m["kind"], m["metadata"]["name"]): m for m in material_manifests(cage, "x", material)}
    )
    # Each pod with the ConfigMaps and Secrets it mounts, nothing more.
    plays = {
        "dns": [("ConfigMap", NAMES.config), ("Secret", NAMES.fingerprints)],
        "proxy": [("ConfigMap", NAMES.config), ("Secret", NAMES.ca), ("Secret", NAMES.secrets),
                  ("ConfigMap", NAMES.upstream_ca)],
        "agent": [("ConfigMap", NAMES.ca_cert)],
    }  # fmt: skip
    files = {}
    for role, needs in plays.items():
        kind = "Pod" if role == "agent" else "Deployment"
        pod = as_pod(objects[(kind, NAMES.workload(role))])
        if role == "agent":
            pod = with_test_mounts(pod)
        files[role] = harness.shared / f"kube-{role}.yaml"
        files[role].write_text(to_yaml([*(objects[n] for n in needs), pod]))
    harness.exec("podman", "network", "create", "--internal", "--disable-dns",
                 "--subnet", SUBNET, NETWORK)  # fmt: skip
    outside = ["--network", INTERNET_NETWORK]
    try:
        addresses = {"dns": DNS_IP, "proxy": PROXY_IP, "agent": AGENT_IP}
        deadline = time.monotonic() + 120
        for role in ("dns", "proxy", "agent"):
            networks = ["--network", f"{NETWORK}:ip={addresses[role]}"]
            if role != "agent":
                networks += outside
            played = subprocess.run(
                ["podman", "exec", harness.name, "podman", "kube", "play", *networks,
                 str(files[role])],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert played.returncode == 0, f"kube play {role}:\n{played.stdout}{played.stderr}"
            if role != "agent":
                wait_listening(harness, role, deadline)
        yield files
    finally:
        for role in ("agent", "proxy", "dns"):
            if role in files:
                harness.exec("podman", "kube", "down", str(files[role]), check=False)
        harness.exec("podman", "network", "rm", "-f", NETWORK, check=False)


@pytest.fixture(scope="module")
def outcome(harness: Harness, internet: Internet, played: dict[str, Path]) -> dict[str, Any]:
    """The scenarios' results, and where the session's fake internet stood before them:
    earlier modules (test_cage.py allowlists attacker.example) leave arrivals of their own."""
    http_since, dns_since = len(internet.http()), len(internet.dns())
    out = harness.exec(
        "podman", "exec", "-e", "PYTHONPATH=/e2e-site", "-e", f"E2E_INTERNET_IP={internet.ip}",
        container("agent"), "python3", "/e2e/agent_scenarios.py",
    )  # fmt: skip
    return {
        **json.loads(out.strip().splitlines()[-1]),
        "http_since": http_since,
        "dns_since": dns_since,
    }


def audit(harness: Harness, role: str) -> list[dict[str, Any]]:
    """The audit lines a sidecar wrote to stdout, as the cluster's log pipeline reads them."""
    lines = logs(harness, role).splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"')]


def test_each_role_runs_in_its_own_hardened_pod(harness: Harness, played: dict[str, Path]) -> None:
    for role in ("dns", "proxy", "agent"):
        pod = json.loads(harness.exec("podman", "pod", "inspect", NAMES.workload(role)))
        pod = pod[0] if isinstance(pod, list) else pod
        names = {c["Name"] for c in pod["Containers"]}
        assert names - {f"{pod['Id'][:12]}-infra"} == {container(role)}, names
        inspect = json.loads(harness.exec("podman", "inspect", container(role)))[0]
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        assert inspect["EffectiveCaps"] in (None, [])
        assert inspect["Config"]["User"].split(":")[0] == ("1000" if role == "agent" else "10000")
    agent = json.loads(harness.exec("podman", "pod", "inspect", NAMES.workload("agent")))
    agent = agent[0] if isinstance(agent, list) else agent
    infra = json.loads(harness.exec("podman", "inspect", agent["InfraContainerID"]))[0]
    assert set(infra["NetworkSettings"]["Networks"]) == {NETWORK}


def test_allowed_request_gets_the_real_key_and_the_agent_never_sees_it(
    internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["env_key"] == PLACEHOLDER
    assert outcome["allowed"] == {"status": 200, "body": PLACEHOLDER}  # scrubbed on the way back
    arrived = [r for r in internet.http()[outcome["http_since"] :] if r["path"] == "/echo-key"]
    assert arrived and arrived[-1]["headers"]["x-api-key"] == REAL_KEY  # type: ignore[index]


def test_unlisted_host_and_leaks_are_blocked_and_audited_to_stdout(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["blocked_host"]["status"] == 403
    assert outcome["leak"]["status"] == 403
    assert outcome["placeholder_wrong_host"]["status"] == 403
    assert outcome["direct_ip"]["connected"] is False  # the internal network has no route
    arrived = internet.http()[outcome["http_since"] :]
    assert not [r for r in arrived if "attacker.example" in str(r["host"])]
    records = audit(harness, "proxy")
    blocked = {r["host"] for r in records if r.get("verdict") == "block"}
    assert {"attacker.example", "github.com"} <= blocked
    assert REAL_KEY not in json.dumps(records)


def test_dns_answers_through_its_own_pod_and_sinkholes(
    harness: Harness, internet: Internet, outcome: dict[str, Any]
) -> None:
    assert outcome["dns_allowed"]["answers"] == [PROXY_IP]  # steered to the proxy's pod
    assert outcome["dns_sinkhole"]["answers"] == ["198.51.100.1"]
    assert outcome["dns_tunnel_txt"]["rcode"] == "REFUSED"
    asked = internet.dns()[outcome["dns_since"] :]
    assert not [q for q in asked if str(q["name"]).endswith("attacker.example")]
    blocked = [r for r in audit(harness, "dns") if r.get("verdict") == "block"]
    assert any("attacker.example" in r["qname"] for r in blocked)
