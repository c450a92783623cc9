"""The argv that sets up default deny through `nsenter` (cage/steering_entry.py); run
for real against namespaces in tests/integration/cage/test_steering_entry.py."""

from __future__ import annotations

import shlex

from agentcage.cage import contract
from agentcage.cage.quadlet import CageUnits
from agentcage.cage.service_units import to_services
from agentcage.cage.steering_entry import KEPT, SCRIPT, SETPRIV, pid_file, steering_command
from agentcage.cage.topology import Topology, subnets_for
from agentcage.cage.unit import parse
from agentcage.cage.vm import guest_roles
from tests.unit.cage.test_quadlet import units_for

TOPOLOGY = Topology("basic", 1, *subnets_for(1))


def test_the_proxy_and_the_agent_are_steered_from_the_proxy_containers_mount_namespace() -> None:
    proxy = steering_command(TOPOLOGY, "proxy", (8080, 80, 443))
    agent = steering_command(TOPOLOGY, "agent", ())
    assert proxy[:2] == agent[:2] == ("/bin/sh", "-c")
    # $1: where the PID files are, $2: whose mount (and user) namespace, $3: whose network
    # namespace.
    assert proxy[4:7] == ("%t", "agentcage-basic-proxy", "agentcage-basic-proxy")
    assert agent[4:7] == ("%t", "agentcage-basic-proxy", "agentcage-basic-agent")
    assert proxy[7:] == (
        "-m", contract.STEERING_MODULE, "proxy", TOPOLOGY.proxy_ip, "8079", "8080", "80", "443",
    )  # fmt: skip
    assert agent[7:] == ("-m", contract.STEERING_MODULE, "agent", TOPOLOGY.proxy_ip)
    # Each steered container writes its PID where the setup reads it.
    assert pid_file("agentcage-basic-proxy") == "--pidfile=%t/agentcage-basic-proxy.pid"


def test_the_script_keeps_only_net_admin_and_runs_no_container() -> None:
    words = shlex.split(SCRIPT.replace(";", " ; "))
    # No Podman process at all: both PIDs come from the containers' PID files, each
    # trusted only while its parent is the conmon of the container of that name.
    assert "podman" not in SCRIPT
    assert 'pid_of "$1" "$2" || exit 1; proxy=$p; pid_of "$1" "$3" || exit 1; target=$p;' in SCRIPT
    assert '< "$1/$2.pid"' in SCRIPT and '[ "$comm" = conmon ]' in SCRIPT
    assert 'grep -qzxF -e "$2" "/proc/$c/cmdline"' in SCRIPT
    nsenter = words.index("nsenter")
    # env -i: nothing of the unit's environment reaches the privileged Python.
    assert words[nsenter - 3 : nsenter - 1] == ["env", "-i"]
    assert words[nsenter + 1 : nsenter + 5] == [
        "--target=$proxy", "$user", "--mount", "--net=/proc/$target/ns/net",
    ]  # fmt: skip
    setpriv = words.index(SETPRIV)
    assert tuple(words[setpriv + 1 : setpriv + 4]) == KEPT
    assert KEPT == ("--inh-caps=-all", "--bounding-set=-all,+net_admin", "--no-new-privs")
    # -I: neither the working directory nor PYTHON* variables decide what is imported.
    assert words[setpriv + 4 :] == [contract.PYTHON, "-I", "$@"]


def test_both_renderers_carry_the_same_line_and_the_microvm_guest_still_reads_it() -> None:
    quadlets = {name: parse(text) for name, text in units_for("basic", []).items()}
    for role in ("proxy", "agent"):
        unit = quadlets[f"agentcage-basic-{role}.container"]
        post, *_ = unit.get("Service", "ExecStartPost")
        assert post == ("-/bin/sh", *steering_command(TOPOLOGY, role, _own(role))[1:])
        assert (pid_file(f"agentcage-basic-{role}"),) in unit.get("Container", "PodmanArgs")
        # The guest agent runs the module itself, with the words after it (guest_roles).
        assert guest_roles._steering(unit) == post[post.index(contract.STEERING_MODULE) + 1 :]
    for rootless in (False, True):
        services = to_services(CageUnits(quadlets), rootless=rootless).files
        for role in ("proxy", "agent"):
            rendered = parse(services[f"agentcage-basic-{role}.service"].render())
            posts = rendered.get("Service", "ExecStartPost")
            # The agent's unit also carries the wait for its command (agent_started.py).
            assert posts == quadlets[f"agentcage-basic-{role}.container"].get(
                "Service", "ExecStartPost"
            )
            # Podman 4.3's plain services write the PID file too.
            (start,) = rendered.get("Service", "ExecStart")
            assert f"--pidfile=%t/agentcage-basic-{role}.pid" in start


def _own(role: str) -> tuple[int, ...]:
    return (8080, 80, 443) if role == "proxy" else ()
