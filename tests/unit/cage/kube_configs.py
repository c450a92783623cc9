"""Cage configs for the Kubernetes renderer's tests."""

from __future__ import annotations

from pathlib import Path

from agentcage.config import load_config
from agentcage.config.schema import CageConfig

KUBE_CONFIG = """\
name: demo
container:
  image: registry.example/agent:1
  command: [sleep, infinity]
  user: "1000:1000"
  tmpfs: ["/home/agent:size=64m"]
  ports: ["8888:8000"]
  memory: 1g
  cpus: 1.5
secret_injection:
  - env: ANTHROPIC_API_KEY
    inject_to: [api.anthropic.com]
domains:
  list: [api.anthropic.com]
network:
  ports:
    - {host: git.example.com, port: 2222, protocol: opaque}
kubernetes:
  agent_kind: AGENT_KIND
  images:
    proxy: registry.example/agentcage-proxy:1
    dns: registry.example/agentcage-dns:1
  dns_service_ip: 10.96.0.53
  proxy_service_ip: 10.96.0.54
"""


def kube_config(tmp_path: Path, agent_kind: str = "Deployment", extra: str = "") -> CageConfig:
    path = tmp_path / "kube.yaml"
    path.write_text(KUBE_CONFIG.replace("AGENT_KIND", agent_kind) + extra)
    return load_config(path)
