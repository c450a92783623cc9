"""`kube render`: schema-valid, stable, and the cage's guarantees hold in the objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions
from ruamel.yaml import YAML

from agentcage.cage.kube.manifest_yaml import to_yaml
from agentcage.cage.kube.manifests import render_manifests
from agentcage.cage.kube.object_names import KubeNames
from agentcage.cage.kube.pods import read_container
from agentcage.cage.kube.policies import METADATA
from agentcage.cage.unit import RenderError, UnitFile
from agentcage.config.kubernetes import DEFAULT_CLUSTER_CIDRS
from agentcage.errors import ConfigError
from tests.unit.cage.kube_configs import KUBE_CONFIG, kube_config

GOLDEN = Path(__file__).parent / "golden" / "kube"
KINDS = ("Deployment", "Job", "Pod")
# The three most recent minor versions whose OpenAPI schemas kubernetes-validate ships.
VERSIONS = sorted(set(all_versions()), key=lambda v: tuple(map(int, v.split("."))))[-3:]
NAMES = KubeNames("demo")


def by_kind(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]
    return spec if manifest["kind"] == "Pod" else spec["template"]["spec"]


def workload(manifests: list[dict[str, Any]], role: str) -> dict[str, Any]:
    name = NAMES.workload(role)
    return next(m for m in manifests if m["metadata"]["name"] == name and m["kind"] != "Service")


def test_three_versions_are_tested() -> None:
    assert len(VERSIONS) == 3
    assert len({v.rsplit(".", 1)[0] for v in VERSIONS}) == 3


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_manifest_validates_strictly(tmp_path: Path, kind: str, version: str) -> None:
    manifests = render_manifests(kube_config(tmp_path, kind))
    assert len(manifests) == 10
    for manifest in manifests:
        # strict: a field the schema does not know is an error, not ignored
        kubernetes_validate.validate(manifest, version, strict=True)


def test_yaml_round_trips_and_renders_twice_the_same(tmp_path: Path) -> None:
    config = kube_config(tmp_path)
    first, second = to_yaml(render_manifests(config)), to_yaml(render_manifests(config))
    assert first == second
    documents = [d for d in YAML(typ="safe", pure=True).load_all(first) if d is not None]
    assert documents == render_manifests(config)


@pytest.mark.parametrize("kind", KINDS)
def test_matches_golden(tmp_path: Path, kind: str) -> None:
    rendered = to_yaml(render_manifests(kube_config(tmp_path, kind)))
    golden = GOLDEN / f"demo-{kind.lower()}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"rerun with UPDATE_GOLDEN=1 if {golden} is stale"


def test_keys_are_sorted_in_the_yaml(tmp_path: Path) -> None:
    text = to_yaml(render_manifests(kube_config(tmp_path)))
    documents = text.split("---\n")[1:]
    assert len(documents) == 10
    for document in documents:
        keys = [line.split(":")[0] for line in document.splitlines() if line[:1].isalpha()]
        assert keys == sorted(keys)


@pytest.mark.parametrize("kind", KINDS)
def test_the_agent_holds_no_secret_and_no_ca_key(tmp_path: Path, kind: str) -> None:
    config = kube_config(tmp_path, kind)
    manifests = render_manifests(config)
    agent = pod_spec(workload(manifests, "agent"))
    assert [v for v in agent["volumes"] if "secret" in v] == []
    assert [v["configMap"]["name"] for v in agent["volumes"] if "configMap" in v] == [NAMES.ca_cert]
    env = agent["containers"][0]["env"]
    assert all("valueFrom" not in e for e in env)
    assert {"name": "ANTHROPIC_API_KEY", "value": "{{ANTHROPIC_API_KEY}}"} in env
    # Secrets reach the proxy only; the fingerprints (never values) the DNS pod only.
    mounted = {
        role: {v["secret"]["secretName"] for v in pod_spec(workload(manifests, role))["volumes"]
               if "secret" in v}
        for role in ("proxy", "dns", "agent")
    }  # fmt: skip
    assert mounted == {
        "proxy": {NAMES.ca, NAMES.secrets},
        "dns": {NAMES.fingerprints},
        "agent": set(),
    }


def test_the_proxy_is_not_in_the_agents_pod(tmp_path: Path) -> None:
    manifests = render_manifests(kube_config(tmp_path))
    for role in ("proxy", "dns", "agent"):
        containers = pod_spec(workload(manifests, role))["containers"]
        assert [c["name"] for c in containers] == [NAMES.workload(role)]
    agent = pod_spec(workload(manifests, "agent"))
    assert agent["dnsPolicy"] == "None"
    assert agent["dnsConfig"] == {"nameservers": ["10.96.0.53"]}
    env = {e["name"]: e["value"] for e in agent["containers"][0]["env"]}
    assert env["HTTPS_PROXY"] == "http://10.96.0.54:8080"
    services = {m["metadata"]["name"]: m["spec"]["clusterIP"] for m in manifests
                if m["kind"] == "Service"}  # fmt: skip
    assert services == {NAMES.workload("proxy"): "10.96.0.54", NAMES.workload("dns"): "10.96.0.53"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_pod_meets_the_restricted_profile(tmp_path: Path, kind: str) -> None:
    manifests = render_manifests(kube_config(tmp_path, kind))
    for role in ("proxy", "dns", "agent"):
        spec = pod_spec(workload(manifests, role))
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] > 0
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        for volume in spec["volumes"]:
            assert "hostPath" not in volume
        sysctls = spec["securityContext"].get("sysctls", [])
        # the only sysctl the restricted profile allows that a cage uses
        assert {s["name"] for s in sysctls} <= {"net.ipv4.ip_unprivileged_port_start"}


def test_sidecars_listen_in_their_pod_and_audit_to_stdout(tmp_path: Path) -> None:
    manifests = render_manifests(kube_config(tmp_path))
    proxy = pod_spec(workload(manifests, "proxy"))["containers"][0]["args"]
    dns = pod_spec(workload(manifests, "dns"))["containers"][0]["args"]
    assert proxy[proxy.index("--listen") + 1] == "0.0.0.0:8080"
    assert proxy[proxy.index("--transparent") + 1] == "0.0.0.0"
    assert dns[dns.index("--listen") + 1] == "0.0.0.0:53"
    assert dns[dns.index("--steer-to") + 1] == "10.96.0.54"
    assert "--audit-log" not in proxy + dns


@pytest.mark.parametrize("version", VERSIONS)
def test_an_audit_claim_takes_the_sidecars_logs(tmp_path: Path, version: str) -> None:
    config = kube_config(tmp_path, extra="  audit_claim: agentcage-audit\n")
    manifests = render_manifests(config)
    for role, log in (("proxy", "proxy.jsonl"), ("dns", "dns.jsonl")):
        spec = pod_spec(workload(manifests, role))
        args = spec["containers"][0]["args"]
        assert args[args.index("--audit-log") + 1] == f"/var/log/agentcage/{log}"
        claims = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims == [
            {"name": "audit", "persistentVolumeClaim": {"claimName": "agentcage-audit"}}
        ]
        assert spec["securityContext"]["fsGroup"] == 10000
    agent = pod_spec(workload(manifests, "agent"))
    assert not [v for v in agent.get("volumes", []) if "persistentVolumeClaim" in v]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_policies_confine_the_agent_and_the_proxy(tmp_path: Path) -> None:
    manifests = render_manifests(kube_config(tmp_path))
    policies = {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "NetworkPolicy"}
    deny = policies[NAMES.default_deny]
    assert deny["podSelector"] == {"matchLabels": {"agentcage.cage": "demo"}}
    assert deny["ingress"] == deny["egress"] == []
    assert deny["policyTypes"] == ["Ingress", "Egress"]

    agent = policies[NAMES.policy("agent")]
    targets = [peer for rule in agent["egress"] for peer in rule["to"]]
    assert targets == [{"podSelector": {"matchLabels": NAMES.labels("proxy")}},
                       {"podSelector": {"matchLabels": NAMES.labels("dns")}}]  # fmt: skip
    proxy_ports = sorted(p["port"] for p in agent["egress"][0]["ports"])
    assert proxy_ports == [80, 443, 2222, 8080]
    assert agent["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]

    proxy = policies[NAMES.policy("proxy")]
    assert proxy["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": NAMES.labels("agent")}}],
            "ports": agent["egress"][0]["ports"],
        }
    ]
    blocks = [peer["ipBlock"] for peer in proxy["egress"][0]["to"]]
    assert [b["cidr"] for b in blocks] == ["0.0.0.0/0", "::/0"]
    excepted = set(blocks[0]["except"] + blocks[1]["except"])
    assert set(DEFAULT_CLUSTER_CIDRS) <= excepted
    for peer in [p for rule in proxy["egress"] for p in rule["to"]]:
        assert "podSelector" not in peer or "namespaceSelector" in peer  # only kube-dns


def test_metadata_address_is_excepted_whatever_the_cluster_ranges(tmp_path: Path) -> None:
    config = kube_config(tmp_path, extra="  cluster_cidrs: [10.0.0.0/8]\n")
    manifests = render_manifests(config)
    proxy = by_kind(manifests, "NetworkPolicy", NAMES.policy("proxy"))["spec"]
    blocks = [peer["ipBlock"] for peer in proxy["egress"][0]["to"]]
    assert blocks[0]["except"] == ["10.0.0.0/8", METADATA[0]]
    assert blocks[1]["except"] == [METADATA[1]]


def test_namespace_option_wins(tmp_path: Path) -> None:
    manifests = render_manifests(kube_config(tmp_path), namespace="team-a")
    assert {m["metadata"]["namespace"] for m in manifests} == {"team-a"}
    with pytest.raises(ConfigError, match="namespace"):
        render_manifests(kube_config(tmp_path), namespace="Team_A")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  dns_service_ip: 10.200.0.1\n", "not a usable address of service_cidr"),
        ("  proxy_service_ip: 10.96.0.53\n", "must differ"),
        ("  cluster_cidrs: [0.0.0.0/0]\n", "whole internet"),
        ("  agent_kind: StatefulSet\n", "agent_kind"),
    ],
)
def test_schema_refuses(tmp_path: Path, extra: str, message: str) -> None:
    text = "\n".join(
        line for line in KUBE_CONFIG.splitlines()
        if not line.startswith(f"  {extra.split(':')[0].strip()}:")
    )  # fmt: skip
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("AGENT_KIND", "Job") + "\n" + extra)
    from agentcage.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_refuses_what_a_cluster_cannot_do(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: demo\ncontainer:\n  image: x\n")
    from agentcage.config import load_config

    with pytest.raises(ConfigError, match=r"kubernetes\.images\.proxy"):
        render_manifests(load_config(bare))
    config = kube_config(tmp_path)
    without_ips = config.model_copy(
        update={"kubernetes": config.kubernetes.model_copy(update={"dns_service_ip": None})}
    )
    with pytest.raises(ConfigError, match="dns_service_ip"):
        render_manifests(without_ips)
    long = config.model_copy(update={"name": "a" * 50})
    with pytest.raises(ConfigError, match="too long"):
        render_manifests(long)
    root = config.model_copy(
        update={"container": config.container.model_copy(update={"user": "0"})}
    )
    with pytest.raises(RenderError, match="non-root"):
        render_manifests(root)
    caps = config.model_copy(
        update={"container": config.container.model_copy(update={"add_capabilities": ["NET_RAW"]})}
    )
    with pytest.raises(RenderError, match="adds no capability"):
        render_manifests(caps)


def test_a_bind_mount_is_refused(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    extra_volume = "container:\n  image: x\n  volumes: [" + str(tmp_path / "work") + ":/work]\n"
    config = kube_config(tmp_path)
    from agentcage.config import load_config

    path = tmp_path / "mount.yaml"
    path.write_text(f"name: demo\n{extra_volume}")
    mounted = load_config(path)
    with pytest.raises(ConfigError, match="host paths"):
        render_manifests(config.model_copy(update={"container": mounted.container}))


def test_an_unknown_unit_key_is_refused() -> None:
    unit = UnitFile()
    unit.add("Container", "ShmSize", "64m")
    with pytest.raises(RenderError, match="ShmSize"):
        read_container("x.container", unit, {})


def test_the_decoy_seed_stays_out_of_the_manifests(tmp_path: Path) -> None:
    seed = "f" * 64
    config = kube_config(tmp_path, extra="secrets:\n  canaries: [{env: AWS_SECRET_ACCESS_KEY}]\n")
    manifests = render_manifests(config, canary_seed=seed)
    assert seed not in to_yaml(manifests)
    proxy_env = pod_spec(workload(manifests, "proxy"))["containers"][0]["env"]
    ref = {"secretKeyRef": {"name": NAMES.secrets, "key": "AGENTCAGE_CANARY_SEED"}}
    assert {"name": "AGENTCAGE_CANARY_SEED", "valueFrom": ref} in proxy_env
    agent_env = {e["name"] for e in pod_spec(workload(manifests, "agent"))["containers"][0]["env"]}
    assert "AWS_SECRET_ACCESS_KEY" in agent_env and "AGENTCAGE_CANARY_SEED" not in agent_env
