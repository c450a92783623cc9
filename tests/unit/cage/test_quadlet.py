"""The quadlet set of a cage: golden files, isolation and hardening properties."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentcage.cage.agent_started import NAME, started_step
from agentcage.cage.contract import STEERING_MODULE
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.topology import Topology, mac_address, subnets_for
from agentcage.cage.unit import parse
from agentcage.config import LoadContext, load_config

REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
IMAGES = Images("localhost/agentcage-proxy:p", "localhost/agentcage-dns:d", "localhost/agent:a")
STATE = Path("/state/deployments")


def units_for(example: str, secrets: list[str]) -> dict[str, str]:
    env = {"HOME": "/home/user"}
    ctx = LoadContext(base_dir=REPO / "examples" / example, environ=env, check_paths=False)
    config = load_config(REPO / "examples" / example / "config.yaml", context=ctx)
    topology = Topology(config.name, 1, *subnets_for(1))
    paths = HostPaths.under(STATE / config.name)
    return build_units(CageSpec(config, topology, IMAGES, paths, tuple(secrets))).rendered()


@pytest.mark.parametrize(("example", "secrets"), [("basic", []), ("openclaw", ["GITHUB_TOKEN"])])
def test_matches_golden_files(example: str, secrets: list[str]) -> None:
    rendered = units_for(example, secrets)
    directory = GOLDEN / example
    if os.environ.get("UPDATE_GOLDEN"):
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        for name, text in rendered.items():
            (directory / name).write_text(text.replace(str(REPO), "<repo>"))
    expected = {p.name: p.read_text() for p in directory.iterdir()}
    assert {n: t.replace(str(REPO), "<repo>") for n, t in rendered.items()} == expected


def test_agent_is_only_on_the_internal_network_and_sees_no_ca_key() -> None:
    units = {name: parse(text) for name, text in units_for("basic", ["ANTHROPIC_API_KEY"]).items()}
    agent = units["agentcage-basic-agent.container"]
    assert agent.get("Container", "Network") == [
        "agentcage-basic-int.network:ip=10.213.0.46,mac=02:00:0a:d5:00:2e"
    ]
    assert agent.get("Container", "DNS") == ["10.213.0.34"]
    volumes = agent.get("Container", "Volume")
    assert not [v for v in volumes if "/ca:" in str(v) or "mitmproxy-ca.pem" in str(v)]
    assert not agent.get("Container", "Secret")
    (env,) = agent.get("Container", "Environment")
    assert "ANTHROPIC_API_KEY={{ANTHROPIC_API_KEY}}" in env
    assert "HTTPS_PROXY=http://10.213.0.35:8080" in env
    assert "SSL_CERT_FILE=/etc/agentcage-ca/ca.pem" in env
    # git ignores the other CA variables; without this `git clone` fails in a cage.
    assert "GIT_SSL_CAINFO=/etc/agentcage-ca/ca.pem" in env
    assert set(agent.get("Unit", "Requires")) == {
        "agentcage-basic-dns.service",
        "agentcage-basic-proxy.service",
    }
    proxy = units["agentcage-basic-proxy.container"]
    assert [s for s in proxy.get("Container", "Secret") if "ANTHROPIC_API_KEY" in str(s)]
    # Ready is the sidecars' own READY=1 once they listen; health checks are liveness.
    assert proxy.get("Container", "Notify") == ["true"]
    assert units["agentcage-basic-dns.container"].get("Container", "Notify") == ["true"]


def test_internal_network_has_no_way_out() -> None:
    net = parse(units_for("basic", [])["agentcage-basic-int.network"])
    assert net.get("Network", "Internal") == ["true"]
    assert net.get("Network", "DisableDNS") == ["true"]


@pytest.mark.parametrize("role", ["agent", "proxy", "dns"])
def test_every_container_is_hardened(role: str) -> None:
    unit = parse(units_for("basic", [])[f"agentcage-basic-{role}.container"])
    assert unit.get("Container", "ReadOnly") == ["true"]
    assert unit.get("Container", "DropCapability") == ["ALL"]
    assert unit.get("Container", "NoNewPrivileges") == ["true"]
    assert unit.get("Container", "User") not in ([], ["0"], ["root"])
    assert unit.get("Container", "PidsLimit")
    assert not unit.get("Container", "AddCapability")


def test_hostile_config_values_cannot_add_lines(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "name: hostile\n"
        "container:\n"
        "  image: 'localhost/x:1'\n"
        "  command: ['sh', '-c', 'echo \"$HOME\" 100% ; rm -rf / \\\\', '[Service]']\n"
        "  env:\n"
        "    A: 'value with spaces and \"quotes\" and $$VAR and %h'\n"
        "domains: {allow: [example.com]}\n"
    )
    cfg = load_config(config)
    topology = Topology("hostile", 0, *subnets_for(0))
    units = build_units(CageSpec(cfg, topology, IMAGES, HostPaths.under(tmp_path))).rendered()
    agent = parse(units["agentcage-hostile-agent.container"])
    assert agent.get("Container", "Exec") == [tuple(cfg.container.command or [])]
    (env,) = agent.get("Container", "Environment")
    assert 'A=value with spaces and "quotes" and $VAR and %h' in env
    assert list(agent.sections) == ["Unit", "Container", "Service", "Install"]


def test_without_cgroups_limits_are_dropped_not_left_to_fail() -> None:
    config = load_config(
        REPO / "examples/openclaw/config.yaml",
        context=LoadContext(base_dir=REPO, environ={"HOME": "/h"}, check_paths=False),
    )
    topology = Topology(config.name, 0, *subnets_for(0))
    units = build_units(CageSpec(config, topology, IMAGES, HostPaths.under(STATE), cgroups=False))
    for name, text in units.rendered().items():
        if not name.endswith(".container"):
            continue
        unit = parse(text)
        assert unit.get("Container", "CgroupsMode") == ["disabled"], name
        assert not unit.get("Container", "PidsLimit"), name
        assert "--memory" not in text and "--cpus" not in text, name
        assert unit.get("Container", "ReadOnly") == ["true"], name


def test_published_ports_go_through_a_relay_not_the_agent() -> None:
    env = {"HOME": "/home/user"}
    ctx = LoadContext(base_dir=REPO / "examples/openclaw", environ=env, check_paths=False)
    config = load_config(REPO / "examples/openclaw/config.yaml", context=ctx)
    topology = Topology(config.name, 1, *subnets_for(1))
    units = build_units(CageSpec(config, topology, IMAGES, HostPaths.under(STATE)))
    rendered = {name: parse(text) for name, text in units.rendered().items()}
    agent = rendered["agentcage-openclaw-agent.container"]
    relay = rendered["agentcage-openclaw-ports.container"]
    assert not agent.get("Container", "PublishPort")
    assert relay.get("Container", "PublishPort") == ["127.0.0.1:18789:18789"]
    assert relay.get("Container", "Exec") == [
        ("-m", "agentcage.cage.forward", topology.agent_ip, "18789")
    ]
    assert relay.get("Unit", "Requires") == ["agentcage-openclaw-agent.service"]


def test_the_dns_sidecar_reads_fingerprints_and_never_sees_a_secret() -> None:
    units = {
        name: parse(text)
        for name, text in units_for("openclaw", ["GITHUB_TOKEN", "ANTHROPIC_API_KEY"]).items()
    }
    dns = units["agentcage-openclaw-dns.container"]
    proxy = units["agentcage-openclaw-proxy.container"]
    shared = f"{STATE}/openclaw/fingerprints:/var/lib/agentcage/fingerprints"
    assert f"{shared}:ro" in dns.get("Container", "Volume")
    assert f"{shared}:rw,U" in proxy.get("Container", "Volume")
    target = "/var/lib/agentcage/fingerprints/name-fingerprints.json"
    for unit in (dns, proxy):
        (argv,) = unit.get("Container", "Exec")
        assert argv[argv.index("--name-fingerprints") + 1] == target
    # Secret-free: no secret mounts, no canary seed, no secrets directory.
    assert not dns.get("Container", "Secret")
    assert not [e for e in dns.get("Container", "Environment") if "SEED" in str(e)]
    assert not [v for v in dns.get("Container", "Volume") if "secret" in str(v).lower()]
    assert proxy.get("Container", "Secret")


def test_every_container_address_has_a_fixed_mac_that_follows_it() -> None:
    # A re-created proxy keeps its MAC, so the agent's cached ARP entry stays right even
    # where netavark announces nothing (Debian 12's 1.4).
    units = units_for("openclaw", [])
    attachments = [
        line.removeprefix("Network=").split(":", 1)[1]
        for text in units.values()
        for line in text.splitlines()
        if line.startswith("Network=")
    ]
    macs = {}
    for options in attachments:
        fields = dict(part.split("=", 1) for part in options.split(","))
        macs[fields["ip"]] = fields["mac"]
    assert len(attachments) == 7 and len(set(macs.values())) == 7
    assert macs["10.213.0.35"] == mac_address("10.213.0.35") == "02:00:0a:d5:00:23"


def test_a_stopped_container_counts_as_stopped_not_failed() -> None:
    # `cage stop` SIGTERMs every container; the exit status of that is 143.
    for name, text in units_for("openclaw", []).items():
        if name.endswith(".container"):
            assert parse(text).get("Service", "SuccessExitStatus") == ["143"], name


def test_default_deny_is_set_up_through_nsenter_and_the_proxy_never_forwards() -> None:
    """The capability is the setup's, in the namespace it enters; neither the agent nor
    the proxy gains one (their hardening is checked above). No container is run for it."""
    units = {name: parse(text) for name, text in units_for("basic", []).items()}
    proxy = units["agentcage-basic-proxy.container"]
    assert "net.ipv4.ip_forward=0" in proxy.get("Container", "Sysctl")
    for role in ("proxy", "agent"):
        post, *_ = units[f"agentcage-basic-{role}.container"].get("Service", "ExecStartPost")
        assert isinstance(post, tuple)
        assert post[:2] == ("-/bin/sh", "-c")  # a failed setup leaves the cage closed, unaudited
        assert "podman run" not in post[2] and "nsenter" in post[2]
        # The PID files' directory, the proxy container's mount namespace, the steered
        # container's network namespace.
        assert post[4:7] == ("%t", "agentcage-basic-proxy", f"agentcage-basic-{role}")
        assert post[7:10] == ("-m", "agentcage.cage.steering", role)
        # Its PID file, where the setup reads it (steering_entry.py).
        args = units[f"agentcage-basic-{role}.container"].get("Container", "PodmanArgs")
        assert (f"--pidfile=%t/agentcage-basic-{role}.pid",) in args
    (proxy_post,) = proxy.get("Service", "ExecStartPost")
    assert proxy_post[-6:] == ("proxy", "10.213.0.35", "8079", "8080", "80", "443")


def basic_units(tmp_path: Path, *, transparent: bool) -> CageUnits:
    """The basic example's units with `network.transparent` set as given."""
    text = (REPO / "examples" / "basic" / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(text + f"\nnetwork:\n  transparent: {transparent}\n")
    ctx = LoadContext(base_dir=REPO / "examples" / "basic", environ={}, check_paths=False)
    config = load_config(tmp_path / "config.yaml", context=ctx)
    topology = Topology(config.name, 1, *subnets_for(1))
    return build_units(CageSpec(config, topology, IMAGES, HostPaths.under(STATE / "basic")))


def test_without_transparent_capture_there_is_no_steering(tmp_path: Path) -> None:
    units = basic_units(tmp_path, transparent=False)
    for unit in units.files.values():
        steps = unit.get("Service", "ExecStartPost")
        assert all(STEERING_MODULE not in step for step in steps)
        assert "net.ipv4.ip_forward=0" not in unit.get("Container", "Sysctl")


@pytest.mark.parametrize("transparent", [True, False])
def test_the_agents_start_ends_with_the_wait_for_its_command(
    tmp_path: Path, transparent: bool
) -> None:
    units = basic_units(tmp_path, transparent=transparent)
    steps = units.files["agentcage-basic-agent.container"].get("Service", "ExecStartPost")
    # Last, after default deny's setup; `-`: the step only waits, it never fails the unit.
    assert steps[-1] == ("-/bin/sh", *started_step()[1:])
    assert len(steps) == (2 if transparent else 1)
    for name in ("dns", "proxy"):
        sidecar = units.files[f"agentcage-basic-{name}.container"]
        assert all(NAME not in step for step in sidecar.get("Service", "ExecStartPost"))
