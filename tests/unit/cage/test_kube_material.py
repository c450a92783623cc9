"""The CA, secrets and fingerprints objects: valid, and each only where it belongs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import kubernetes_validate
from click.testing import CliRunner

from agentcage.cage import ca
from agentcage.cage.kube.manifests import render_manifests
from agentcage.cage.kube.material import CageMaterial, material_manifests
from agentcage.cage.kube.object_names import KubeNames
from agentcage.cli.main import cli
from agentcage.proxy.confdir import DHPARAM
from tests.unit.cage.kube_configs import KUBE_CONFIG, kube_config
from tests.unit.cage.test_kube_manifests import VERSIONS, pod_spec, workload

REAL = "sk-ant-api03-unit-REAL-value-0123456789abcdefghijklmnop"
NAMES = KubeNames("demo")


def test_material_validates_and_holds_the_values(tmp_path: Path) -> None:
    config = kube_config(tmp_path)
    material = CageMaterial.make("demo", {"ANTHROPIC_API_KEY": REAL}, canary_seed="seed")
    objects = material_manifests(config, "agentcage", material)
    for version in VERSIONS:
        for manifest in objects:
            kubernetes_validate.validate(manifest, version, strict=True)
    data = {m["metadata"]["name"]: m["data"] for m in objects}
    assert set(data[NAMES.ca]) == {ca.KEY_AND_CERT, ca.CERT, DHPARAM}
    assert b"PRIVATE KEY" in base64.b64decode(data[NAMES.ca][ca.KEY_AND_CERT])
    assert "PRIVATE KEY" not in json.dumps(data[NAMES.ca_cert])
    assert base64.b64decode(data[NAMES.secrets]["ANTHROPIC_API_KEY"]).decode() == REAL
    fingerprints = base64.b64decode(data[NAMES.fingerprints]["name-fingerprints.json"]).decode()
    assert REAL not in fingerprints and json.loads(fingerprints)


def test_upstream_ca_reaches_the_proxy_only(tmp_path: Path) -> None:
    config = kube_config(tmp_path)
    manifests = render_manifests(config, upstream_ca=True)
    proxy = pod_spec(workload(manifests, "proxy"))
    mounts = {m["mountPath"]: m["name"] for m in proxy["containers"][0]["volumeMounts"]}
    assert mounts["/etc/agentcage-upstream-ca"] == "upstream-ca"
    args = proxy["containers"][0]["args"]
    assert args[args.index("--upstream-ca") + 1] == "/etc/agentcage-upstream-ca/ca.pem"
    for role in ("dns", "agent"):
        volumes = pod_spec(workload(manifests, role))["volumes"]
        assert NAMES.upstream_ca not in json.dumps(volumes)
    material = CageMaterial.make("demo", {}, None)
    with_ca = CageMaterial(material.ca_key_and_cert, material.ca_cert, {}, None, b"PEM")
    names = [m["metadata"]["name"] for m in material_manifests(config, "ns", with_ca)]
    assert names[-1] == NAMES.upstream_ca


def test_cli_render_prints_and_writes_a_kustomize_base(tmp_path: Path) -> None:
    path = tmp_path / "kube.yaml"
    path.write_text(KUBE_CONFIG.replace("AGENT_KIND", "Job"))
    runner = CliRunner()
    printed = runner.invoke(cli, ["kube", "render", "-c", str(path), "-n", "team"])
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith("---\n") and "namespace: team" in printed.output
    assert "kind: Job" in printed.output
    base = tmp_path / "base"
    written = runner.invoke(cli, ["kube", "render", "-c", str(path), "--kustomize", str(base)])
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in base.iterdir()) == ["agentcage-demo.yaml", "kustomization.yaml"]
    assert (base / "agentcage-demo.yaml").read_text() == printed.output.replace("team", "agentcage")
    bad = runner.invoke(cli, ["kube", "render", "-c", str(path), "-n", "Bad_NS"])
    assert bad.exit_code != 0 and "namespace" in bad.output
