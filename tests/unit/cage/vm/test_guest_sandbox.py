"""The guest agent's requests that change a running cage refuse what they are not for.

These are the refusals only: the requests themselves act on the guest (mounts, network
namespaces, secrets under /run) and run in tests/integration/vm/test_guest_cage.py.
"""

from __future__ import annotations

import json
import signal

from agentcage.cage.vm import guest_agent, guest_sandbox


def _answer(**message: object) -> dict[str, object]:
    reply, stop = guest_agent.answer(json.dumps(message).encode())
    assert not stop
    return reply


def test_only_a_running_role_gets_a_signal_and_only_hup_or_term() -> None:
    assert not _answer(op="signal", name="proxy", signal=int(signal.SIGHUP))["ok"]  # none runs
    assert not _answer(op="signal", name="proxy", signal=int(signal.SIGKILL))["ok"]


def test_a_secret_name_cannot_leave_the_secrets_directory() -> None:
    for name in ("../etc/passwd", "a/b", ".hidden", "ÄPI"):
        reply = _answer(op="secret", name=name, value="x", uid=10000)
        assert not reply["ok"] and "not a secret name" in str(reply["error"])


def test_only_the_port_floor_and_forwarding_off_may_be_set() -> None:
    refused = guest_sandbox.set_sysctl({"name": "net.ipv4.ip_forward", "value": "1"})
    assert not refused["ok"]
    refused = guest_sandbox.set_sysctl(
        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0; reboot"}
    )
    assert not refused["ok"]
    refused = guest_sandbox.set_sysctl({"name": "net.ipv4.conf.all.forwarding", "value": "0"})
    assert not refused["ok"]
    # The proxy unit's Sysctl=net.ipv4.ip_forward=0 (default deny) only hardens the guest.
    assert guest_sandbox.sysctl_allowed("net.ipv4.ip_forward", "0")
    assert guest_sandbox.sysctl_allowed("net.ipv4.ip_unprivileged_port_start", "53")
    assert not guest_sandbox.sysctl_allowed("net.ipv4.ip_forward", "00")


def test_mount_options_split_into_flags_and_filesystem_data() -> None:
    flags, data = guest_sandbox._split_options("rw,noexec,nosuid,size=16M,mode=1777")
    assert flags == guest_sandbox._MS_NOEXEC | guest_sandbox._MS_NOSUID
    assert data == "size=16M,mode=1777"


def test_the_agent_network_namespace_takes_only_a_plain_name() -> None:
    reply = _answer(op="netns", netns="../x", guest=[], agent="10.0.0.2/24")
    assert not reply["ok"]


def test_the_host_may_ask_only_for_the_steering_module_with_plain_words() -> None:
    for role, args, netns in (
        ("proxy", ["10.213.0.35", "8079", "8080; reboot"], ""),
        ("proxy", ["10.213.0.35", "--table", "x"], ""),
        ("agent", ["10.213.0.35"], "../../proc/1/ns/net"),
        ("router", ["10.213.0.35"], "agent"),
    ):
        reply = _answer(op="steer", role=role, args=args, netns=netns)
        assert not reply["ok"] and "not one the host may ask" in str(reply["error"])


def test_the_guest_runs_the_steering_module_of_the_runtime_venv() -> None:
    from agentcage.cage.contract import PYTHON, STEERING_MODULE

    assert guest_agent.STEERING == (PYTHON, "-m", STEERING_MODULE)
