"""Decoy credentials: the agent gets them, the proxy can recognise them, nobody else can."""

from __future__ import annotations

from pathlib import Path

from agentcage.cage import layout
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.state import StateStore
from agentcage.cage.topology import Topology, subnets_for
from agentcage.cage.unit import parse
from agentcage.config import LoadContext, parse_config
from agentcage.policy.canaries import CANARY_SEED_ENV
from agentcage.policy.engine import Policy
from agentcage.policy.types import Headers, Request, Verdict

IMAGES = Images("localhost/agentcage-proxy:p", "localhost/agentcage-dns:d", "localhost/agent:a")
CONFIG = """\
name: decoy
container: {image: x}
domains: {allow: [api.anthropic.com, github.com]}
secrets:
  canaries:
    - {env: AWS_SECRET_ACCESS_KEY, kind: aws-secret}
    - {env: OPENAI_API_KEY, kind: openai}
"""


def environment(units: dict[str, str], role: str) -> dict[str, str]:
    unit = parse(units[f"agentcage-decoy-{role}.container"])
    words = [w for value in unit.get("Container", "Environment") for w in value]
    return dict(word.split("=", 1) for word in words)


def test_agent_decoys_come_from_the_seed_the_proxy_gets(tmp_path: Path) -> None:
    config = parse_config(CONFIG, "c.yaml", context=LoadContext())
    store = StateStore(tmp_path)
    seed = layout.canary_seed(store, "decoy")
    assert layout.canary_seed(store, "decoy") == seed  # stable across updates
    units = build_units(
        CageSpec(
            config,
            Topology("decoy", 1, *subnets_for(1)),
            IMAGES,
            HostPaths.under(tmp_path / "deployments/decoy"),
            canary_seed=seed,
        )
    ).rendered()
    agent, proxy = environment(units, "agent"), environment(units, "proxy")
    assert proxy[CANARY_SEED_ENV] == seed
    assert CANARY_SEED_ENV not in agent
    decoy = agent["OPENAI_API_KEY"]
    assert decoy.startswith("sk-") and len(decoy) > 20
    assert seed not in units["agentcage-decoy-agent.container"]

    # The proxy, given only the seed, blocks the decoy anywhere, even toward its provider.
    policy = Policy.from_config(config, {}, environ={CANARY_SEED_ENV: seed})
    for host in ("github.com", "api.anthropic.com"):
        request = Request(
            "POST", "https", host, 443, "/x", Headers((("content-type", "text/plain"),)),
            f"key={decoy}".encode(),
        )  # fmt: skip
        decision = policy.check_request(request)
        assert decision.verdict is Verdict.BLOCK, host
        assert decoy not in decision.reason


def test_a_different_seed_gives_different_decoys(tmp_path: Path) -> None:
    config = parse_config(CONFIG, "c.yaml", context=LoadContext())
    seeds = [layout.canary_seed(StateStore(tmp_path / str(i)), "decoy") for i in range(2)]
    assert seeds[0] != seeds[1]
    values = []
    for seed in seeds:
        units = build_units(
            CageSpec(
                config,
                Topology("decoy", 1, *subnets_for(1)),
                IMAGES,
                HostPaths.under(tmp_path),
                canary_seed=seed,
            )
        ).rendered()
        values.append(environment(units, "agent")["AWS_SECRET_ACCESS_KEY"])
    assert values[0] != values[1]
