"""`cage verify` against scripted podman answers: pass, fail, and checks that cannot run."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import shlex
import threading
from collections.abc import Sequence
from pathlib import Path

from agentcage.cage import topology, verify_network
from agentcage.cage.contract import agent_environment
from agentcage.cage.lifecycle import Cages
from agentcage.cage.podman import DEFAULT_TIMEOUT, Completed
from agentcage.cage.verify import CheckResult, verify
from agentcage.errors import PodmanError
from tests.unit.cage.fakes import RecordingRunner, make_cages, ok, write_config

# One `sh -c` per container (cage/batched_exec.py): each framed step, as sh runs it.
_STEP = re.compile(r"printf '%s %s\\n' (\S+) (\S+); (.*?) 2>&1; printf")


@dataclasses.dataclass
class ShellRunner(RecordingRunner):
    """Answers a batched `podman exec C sh -c SCRIPT` step by step, each step as the
    scripted answer to `podman exec C STEP...` (so every test also runs the framing)."""

    def run(
        self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed:  # fmt: skip
        key = tuple(argv)
        if key[:3] == NETCHECK:
            return self._with_inspect(super().run(argv, input=input, check=check, timeout=timeout))
        if key[:2] != ("podman", "exec") or key[3:5] != ("sh", "-c"):
            return super().run(argv, input=input, check=check, timeout=timeout)
        direct = self.answer(key)
        if direct is not None and not isinstance(direct, PodmanError) and not direct.ok:
            self.calls.append(key)
            return direct  # no sh there, or no container
        self.calls.append(key)
        out = []
        for marker, name, command in _STEP.findall(key[5]):
            step = (*key[:3], *shlex.split(command))
            answer = self.answer(step) or Completed(step, 0, "", "")
            assert isinstance(answer, Completed)
            text, code = answer.stdout + answer.stderr, answer.returncode
            out.append(f"{marker} {name}\n{text}\n{marker} end {code}\n")
        return Completed(key, 0, "".join(out), "")

    def _with_inspect(self, answer: Completed) -> Completed:
        """The script's output with what its inspect printed of the agent first: the
        scripted answer to INSPECT (environment, mounts), framed as the script frames it."""
        inspected = self.answer(INSPECT)
        if not answer.stdout or not isinstance(inspected, Completed):
            return answer  # the script ended before its reads, as with a failed inspect
        env, mounts = ([*inspected.stdout.splitlines(), "", ""])[:2]
        mark = verify_network.MARK
        framed = f"{mark} env\n{env}\n{mark} mounts\n{mounts}\n"
        return dataclasses.replace(answer, stdout=framed + answer.stdout)


EXEC = ("podman", "exec", "agentcage-demo-agent")
MISSING = Completed((), 1, "", "No such file")
STATUS = "Name:\tpython3\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
NETWORK = [
    {"name": "no direct route out", "passed": True, "detail": "unreachable"},
    {"name": "unlisted name sinkholed", "passed": True, "detail": "198.51.100.1"},
]


# Each sidecar listens on its service port (and the DNS sidecar's dnsmasq on loopback).
# (10.213.0.3:8080 and 10.213.0.2:53, the demo cage's first subnet, in the kernel's order)
PROXY_TCP = "  sl local rem st\n   0: 0300D50A:1F90 00000000:0000 0A 0\n"
DNS_TCP = (
    "  sl local rem st\n   0: 0200D50A:0035 00000000:0000 0A 0\n"
    "   1: 0100007F:8A2B 00000000:0000 0A 0\n"
)
# The agent's default route via the proxy (10.213.0.3, little-endian hex).
ROUTES = (
    "Iface\tDestination\tGateway \tFlags\n"
    "eth0\t00000000\t0300D50A\t0003\n"
    "eth0\t0000D50A\t00000000\t0001\n"
)
AGENT_ROUTES = ("podman", "exec", "agentcage-demo-agent", "cat", "/proc/net/route")
# verify_network.netcheck_command: `sh -c SCRIPT` on the host, into the agent's namespace.
NETCHECK = ("/bin/sh", "-c", verify_network.SCRIPT)


def _netcheck(
    rows: list[dict[str, object]], proxy: str = PROXY_TCP, forward: str = "0\n"
) -> Completed:
    """The script's output: the sidecars' reads, each framed, then netcheck's JSON rows."""
    mark = verify_network.MARK
    framed = f"{mark} proxy\n{proxy}{mark} dns\n{DNS_TCP}{mark} forward\n{forward}"
    return ok(f"{framed}{mark} read\n{mark} end\n{json.dumps(rows)}\n")


AGENT_MOUNTS = [{"Source": "/somewhere/agent"}]
# What the script's one `podman container inspect` says of the agent (its environment,
# then its mounts), scripted apart from the rest of its output (ShellRunner).
INSPECT = ("podman", "container", "inspect")
WALLS = {
    NETCHECK: _netcheck(NETWORK),
    AGENT_ROUTES: ok(ROUTES),
}


def _inspected(env: list[str], mounts: list[dict[str, str]]) -> Completed:
    """`podman container inspect` of the agent: its environment, then its mounts."""
    return ok(json.dumps(env) + "\n" + json.dumps(mounts) + "\n")


def _cage(tmp_path: Path, answers: dict[tuple[str, ...], Completed]) -> Cages:
    runner = ShellRunner(answers={("systemctl", "is-active"): ok("active\n"), **WALLS, **answers})
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    topo = topology.load(cages.store, "demo")
    assert topo is not None
    env = agent_environment(cages.store.load_config("demo"), topo)
    runner.answers.setdefault(
        INSPECT,
        _inspected([f"{k}={v}" for k, v in env.items()], AGENT_MOUNTS),
    )
    return cages


def test_everything_holds(tmp_path: Path) -> None:
    cages = _cage(
        tmp_path,
        {
            ("podman", "exec", "agentcage-demo-agent", "touch"): Completed(
                (), 1, "", "touch: cannot touch '/.agentcage-verify': Read-only file system"
            ),
            ("podman", "exec", "agentcage-demo-agent", "cat", "/proc/1/status"): ok(STATUS),
            ("podman", "exec", "agentcage-demo-agent", "cat", "/etc/agentcage-ca/ca.pem"): ok(CERT),
            (*EXEC, "cat", "/var/lib/agentcage/ca/mitmproxy-ca.pem"): MISSING,
            (*EXEC, "cat", "/etc/agentcage-ca/mitmproxy-ca.pem"): MISSING,
        },
    )  # fmt: skip
    results = verify(cages, "demo")
    failed = [r for r in results if not r.passed]
    assert not failed, failed
    assert {"no capabilities", "no-new-privileges", "root filesystem read-only"} <= {
        r.name for r in results
    }


FLOW_CHECK = {"name": "raw TCP to port 22 refused", "passed": True, "detail": "reset; audited"}


def test_a_forwarding_proxy_or_a_missing_route_fails(tmp_path: Path) -> None:
    cages = _cage(
        tmp_path,
        {NETCHECK: _netcheck(NETWORK, forward="1\n"), AGENT_ROUTES: ok(ROUTES.splitlines()[0])},
    )
    results = {r.name: r for r in verify(cages, "demo")}
    assert not results["proxy does not forward"].passed
    assert results["proxy does not forward"].detail == "ip_forward 1"
    assert not results["agent routes via the proxy"].passed
    assert "none" in results["agent routes via the proxy"].detail


def test_a_rootless_cage_is_judged_as_a_rootful_one(tmp_path: Path) -> None:
    """Rootless cages are steered too (docs/transparent.md): the agent needs its route
    via the proxy (and netcheck, in its namespace, a refused flow's line)."""
    (tmp_path / "unrouted").mkdir()
    header, _, local = ROUTES.splitlines()
    answers = {
        NETCHECK: _netcheck([FLOW_CHECK]),
        ("systemctl", "--user", "is-active"): ok("active\n"),
    }
    for where, routes, passed in (
        (tmp_path, ROUTES, True),
        (tmp_path / "unrouted", f"{header}\n{local}\n", False),
    ):
        cages = _cage(where, {**answers, AGENT_ROUTES: ok(routes)})
        cages.host = dataclasses.replace(cages.host, rootless=True)
        results = {r.name: r for r in verify(cages, "demo")}
        assert results[FLOW_CHECK["name"]].passed
        assert results["agent routes via the proxy"].passed is passed, results
        assert results["proxy does not forward"].passed


def test_a_check_that_cannot_run_fails(tmp_path: Path) -> None:
    cages = _cage(
        tmp_path,
        {
            ("podman", "exec"): Completed((), 127, "", "executable file `cat` not found"),
            NETCHECK: Completed((), 1, "", "nsenter: cannot open /proc/0/ns/net"),
        },
    )
    results = {r.name: r for r in verify(cages, "demo")}
    assert not results["root filesystem read-only"].passed
    assert not results["no capabilities"].passed
    assert "cannot read" in results["no-new-privileges"].detail
    assert not results["network checks"].passed
    assert "nsenter: cannot open" in results["network checks"].detail


def test_a_writable_root_and_capabilities_fail(tmp_path: Path) -> None:
    cages = _cage(
        tmp_path,
        {
            ("podman", "exec", "agentcage-demo-agent", "touch"): ok(),
            ("podman", "exec", "agentcage-demo-agent", "cat", "/proc/1/status"): ok(
                "CapEff:\t00000000a80425fb\nNoNewPrivs:\t0\n"
            ),
        },
    )
    results = {r.name: r for r in verify(cages, "demo")}
    assert not results["root filesystem read-only"].passed
    assert not results["no capabilities"].passed
    assert not results["no-new-privileges"].passed


def test_a_stopped_cage_fails_verify(tmp_path: Path) -> None:
    runner = RecordingRunner(answers={("systemctl", "is-active"): ok("inactive\n")})
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    (result,) = verify(cages, "demo")
    assert not result.passed and "not running" in result.detail


def test_on_podman_4_3_secret_values_are_read_from_the_proxy_mount(tmp_path: Path) -> None:
    # Podman < 4.5 has no `secret inspect --showsecret`; the proxy holds the value mounted.
    unknown_flag = Completed((), 125, "", "Error: unknown flag: --showsecret")
    cages = _cage(
        tmp_path,
        {
            ("podman", "secret", "ls"): ok("agentcage-demo-API_KEY\n"),
            ("podman", "secret", "inspect"): unknown_flag,
            ("podman", "exec", "agentcage-demo-proxy", "cat", "/run/secrets/agentcage/API_KEY"): ok(
                "real-value-123\n"
            ),
        },
    )  # fmt: skip
    check = next(r for r in verify(cages, "demo") if r.name.startswith("no real secret"))
    assert check.passed, check.detail
    runner = cages.host.runner
    assert isinstance(runner, RecordingRunner)
    runner.answers[INSPECT] = _inspected(["LEAK=real-value-123"], AGENT_MOUNTS)
    check = next(r for r in verify(cages, "demo") if r.name.startswith("no real secret"))
    assert not check.passed and check.detail == "found: API_KEY"


def test_the_network_checks_run_in_the_agents_namespace(tmp_path: Path) -> None:
    runner = RecordingRunner(answers={("systemctl", "is-active"): ok("active\n")})
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    topo = topology.load(cages.store, "demo")
    assert topo is not None
    rows = [*NETWORK, {"name": "agent routes via the proxy", "passed": True, "detail": "x"}]
    runner.answers[NETCHECK] = _netcheck(rows)
    results = [r.name for r in verify(cages, "demo")]
    (netcheck,) = [call for call in runner.calls if call[:3] == NETCHECK]
    # The proxy's PID for the mount namespace, the agent's for the network namespace.
    # (and the DNS sidecar's, whose TCP tables it reads beside the proxy's)
    assert netcheck[3:7] == (
        "agentcage-verify",
        topo.container("proxy"),
        topo.container("agent"),
        topo.container("dns"),
    )
    assert netcheck[netcheck.index("--proxy") + 1] == topo.proxy_ip
    assert netcheck[netcheck.index("--resolver") + 1] == topo.dns_ip
    assert "--steered" in netcheck and "--audit-log" in netcheck
    udp_host = netcheck[netcheck.index("--udp-host") + 1]
    assert ipaddress.ip_address(udp_host) in ipaddress.ip_network("203.0.113.0/24")
    assert not [c for c in runner.calls if c[:2] == ("podman", "run")]
    # Default deny's route is one check, read from the agent (_default_deny).
    assert results.count("agent routes via the proxy") == 1


def test_metrics_the_agent_could_reach_fail(tmp_path: Path) -> None:
    cages = _cage(tmp_path, {})
    paths_metrics = tmp_path / "state" / "deployments" / "demo" / "metrics" / "proxy"
    on_a_port = PROXY_TCP + "   1: 00000000:24F8 00000000:0000 0A 0\n"
    runner = cages.host.runner
    assert isinstance(runner, RecordingRunner)
    topo = topology.load(cages.store, "demo")
    assert topo is not None
    env = agent_environment(cages.store.load_config("demo"), topo)
    runner.answers[INSPECT] = _inspected(
        [f"{k}={v}" for k, v in env.items()], [{"Source": str(paths_metrics)}]
    )
    runner.answers[NETCHECK] = _netcheck(NETWORK, proxy=on_a_port)
    check = next(r for r in verify(cages, "demo") if r.name.startswith("metrics"))
    assert not check.passed
    assert check.detail == (
        f"the agent mounts {paths_metrics}; the proxy also listens on 0.0.0.0:9464"
    )


def test_the_transparent_listeners_are_service_ports_not_metrics(tmp_path: Path) -> None:
    cages = _cage(tmp_path, {})
    runner = cages.host.runner
    assert isinstance(runner, RecordingRunner)
    # 10.213.0.3 on 8080 (1F90), 80 (0050) and 443 (01BB): the proxy with its listeners.
    listening = PROXY_TCP + (
        "   1: 0300D50A:0050 00000000:0000 0A 0\n   2: 0300D50A:01BB 00000000:0000 0A 0\n"
    )
    runner.answers[NETCHECK] = _netcheck(NETWORK, proxy=listening)
    check = next(r for r in verify(cages, "demo") if r.name.startswith("metrics"))
    assert check.passed, check.detail


def test_the_agent_is_read_with_one_exec_the_sidecars_with_none_and_no_inspect_apart(
    tmp_path: Path,
) -> None:
    cages = _cage(tmp_path, {})
    runner = cages.host.runner
    assert isinstance(runner, RecordingRunner)
    results = {r.name: r for r in verify(cages, "demo")}
    agent = [c for c in runner.calls if c[:3] == EXEC]
    assert [c[3:5] for c in agent] == [("sh", "-c")]
    # The sidecars' TCP tables and the proxy's ip_forward come from the network checks'
    # script (it has their PIDs): no `podman exec` into either sidecar.
    sidecars = ("agentcage-demo-proxy", "agentcage-demo-dns")
    assert not [c for c in runner.calls if c[:2] == ("podman", "exec") and c[2] in sidecars]
    assert results["proxy does not forward"].passed
    assert results["metrics reachable from the host only"].passed
    # The agent's environment and mounts come from the script's inspect too.
    assert not runner.commands("podman", "container", "inspect")


def test_an_agent_without_sh_is_read_one_exec_at_a_time(tmp_path: Path) -> None:
    no_sh = Completed((), 127, "", "executable file `sh` not found in $PATH")
    cages = _cage(
        tmp_path,
        {
            (*EXEC, "sh"): no_sh,
            (*EXEC, "touch"): Completed((), 1, "", "touch: Read-only file system"),
            (*EXEC, "cat", "/proc/1/status"): ok(STATUS),
            (*EXEC, "cat", "/etc/agentcage-ca/ca.pem"): ok(CERT),
            (*EXEC, "cat", "/var/lib/agentcage/ca/mitmproxy-ca.pem"): MISSING,
            # The one place a mount gone wrong put the key: the agent can read it.
            (*EXEC, "cat", "/etc/agentcage-ca/mitmproxy-ca.pem"): ok("PRIVATE KEY"),
        },
    )
    results = {r.name: r for r in verify(cages, "demo")}
    assert results["root filesystem read-only"].passed
    assert results["no capabilities"].passed and results["no-new-privileges"].passed
    assert results["agent routes via the proxy"].passed
    key = results["CA private key not readable"]
    assert not key.passed and "/etc/agentcage-ca/mitmproxy-ca.pem" in key.detail


@dataclasses.dataclass
class _SlowSystemd(RecordingRunner):
    """systemd answers `is-active` only once the network checks were sent (or after 5 s)."""

    netcheck_sent: threading.Event = dataclasses.field(default_factory=threading.Event)
    waited_in_vain: bool = False

    def run(
        self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed:  # fmt: skip
        key = tuple(argv)
        if key[:3] == NETCHECK:
            self.netcheck_sent.set()
        elif key[:2] == ("systemctl", "is-active") and self.calls:  # not create's own
            self.waited_in_vain |= not self.netcheck_sent.wait(5)
        return super().run(argv, input=input, check=check, timeout=timeout)


def test_whether_the_agent_runs_is_asked_beside_the_checks(tmp_path: Path) -> None:
    # The question is one round trip where the cages run: asked first and alone, it
    # delayed the slowest group (the network checks) by as much.
    runner = _SlowSystemd(answers={("systemctl", "is-active"): ok("active\n")})
    cages, _ = make_cages(tmp_path, runner)
    cages.create(write_config(tmp_path))
    runner.answers[NETCHECK] = _netcheck(NETWORK)
    results = verify(cages, "demo")
    assert not runner.waited_in_vain
    assert results[0] == CheckResult("cage running", True, "agentcage-demo-agent is active")
    # Stopped: the checks' answers are dropped, the one result says why.
    runner.answers[("systemctl", "is-active")] = ok("inactive\n")
    (stopped,) = verify(cages, "demo")
    assert not stopped.passed and "not running" in stopped.detail


def test_sidecar_reads_that_fail_fail_their_checks(tmp_path: Path) -> None:
    mark = verify_network.MARK
    unread = f"{mark} proxy\ncat: /proc/0/net/tcp: No such file or directory\n{mark} dns\n"
    failed = ok(
        f"{unread}{mark} forward\nnsenter: cannot open /proc/7/ns/net\n{mark} failed\n"
        f"{mark} end\n{json.dumps(NETWORK)}\n"
    )
    ended = Completed((), 1, "", "Error: no container with name or ID agentcage-demo-dns")
    for answer, why in ((failed, "cannot open"), (ended, "the script ended first")):
        where = tmp_path / why.replace(" ", "-")
        where.mkdir()
        cages = _cage(where, {NETCHECK: answer})
        results = {r.name: r for r in verify(cages, "demo")}
        forward = results["proxy does not forward"]
        assert not forward.passed and why in forward.detail, forward
        metrics = results["metrics reachable from the host only"]
        assert not metrics.passed
        if answer is ended:  # the inspect that failed had the agent's mounts too: it says why
            assert "no container with name or ID agentcage-demo-dns" in metrics.detail
            assert not results["agent environment"].passed
            continue
        assert "cannot read the proxy's listeners" in metrics.detail
        assert "cannot read the dns's listeners" in metrics.detail
