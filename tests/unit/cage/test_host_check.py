"""Each `host check` item against a faked host: files, executables, devices, command output."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage import host_check
from agentcage.cage.host_check import HostProbe, require_ready, run_checks
from agentcage.cage.host_fixes import isolation_note
from agentcage.cage.host_target import HostTarget
from agentcage.cage.podman import Completed
from agentcage.config import LoadContext, parse_config
from agentcage.config.schema import CageConfig
from agentcage.errors import HostError
from tests.unit.cage.host_fakes import FakeHostRunner, done, healthy, host_of, info

BOX = HostTarget("agentcage-host", "localhost/agentcage-host:t", Path("/d/host"), (Path("/work"),))


def probe(runner: FakeHostRunner, rootless: bool = False) -> HostProbe:
    return HostProbe(runner, rootless)


def labels(finding: host_check.HostFinding) -> list[str]:
    return [label for label, _ in finding.fixes]


def test_a_healthy_host_passes_everything() -> None:
    findings = run_checks(host_of(healthy()))
    assert [(f.name, f.status) for f in findings] == [
        ("systemd", "pass"),
        ("podman", "pass"),
        ("quadlet", "pass"),
        ("cgroups", "pass"),
        ("rootless", "pass"),
        ("netavark", "pass"),
        ("aardvark-dns", "pass"),
        ("nsenter", "pass"),
        ("tun", "pass"),
        ("disk", "pass"),
    ]
    assert findings[1].detail == "Podman 5.4.2"


def test_pid1_not_systemd_fails_and_points_at_host_start() -> None:
    runner = healthy()
    runner.files["/proc/1/comm"] = "process_api\n"
    finding = host_check.check_systemd(probe(runner), host_of(runner))
    assert finding.status == "fail"
    assert "'process_api', not systemd" in finding.detail
    assert "agentcage host start" in dict(finding.fixes)["all"]
    assert "weaker isolation" in dict(finding.fixes)["all"]
    assert {"Debian/Ubuntu", "Fedora", "WSL"} <= set(labels(finding))


def test_systemd_degraded_passes_rootless_without_user_manager_fails() -> None:
    runner = healthy()
    runner.answers[("systemctl",)] = done("degraded\n", 1)
    assert host_check.check_systemd(probe(runner), host_of(runner)).status == "pass"
    runner.answers[("systemctl", "--user")] = done("offline\n", 1)
    finding = host_check.check_systemd(probe(runner, rootless=True), host_of(runner, True))
    assert finding.status == "fail" and "enable-linger" in dict(finding.fixes)["all"]


def test_a_stopped_host_container_fails_systemd_and_skips_the_rest() -> None:
    runner = healthy()
    del runner.files["/proc/1/comm"]  # `podman exec` into a stopped container fails
    findings = run_checks(host_of(runner, prefix=BOX.exec_prefix, host_container=BOX))
    assert [(f.name, f.status) for f in findings] == [("systemd", "fail"), ("isolation", "warn")]
    assert "host container agentcage-host is not running" in findings[0].detail
    assert findings[0].fixes == (("all", "agentcage host start"),)


def test_through_a_host_container_the_isolation_is_disclosed() -> None:
    findings = run_checks(host_of(healthy(), prefix=BOX.exec_prefix, host_container=BOX))
    assert not [f for f in findings if f.failed]
    isolation = findings[-1]
    assert isolation.name == "isolation" and isolation.status == "warn"
    assert "privileged host container agentcage-host" in isolation.detail
    assert "weaker isolation" in isolation.detail
    systemd = findings[0]
    assert systemd.detail == "systemd is PID 1 in the host container agentcage-host (running)"


def test_podman_missing_fails_with_install_commands() -> None:
    runner = healthy()
    runner.missing_commands.add("podman")
    findings = {f.name: f for f in run_checks(host_of(runner))}
    assert findings["podman"].status == "fail"
    assert dict(findings["podman"].fixes) == {
        "Debian/Ubuntu": "sudo apt-get install podman",
        "Fedora": "sudo dnf install podman",
    }
    assert findings["quadlet"].status == "fail"


def test_podman_4_3_has_no_quadlet_and_cages_get_plain_services() -> None:
    runner = healthy()
    runner.answers[("podman", "info")] = info("4.3.1")
    p = probe(runner)
    version = host_check.podman_facts(p).version
    assert version == (4, 3, 1)
    finding = host_check.check_quadlet(p, version)
    assert finding.status == "warn"
    assert finding.detail == (
        "no quadlet in Podman 4.3.1 (it came with 4.4): cages run as plain systemd services "
        "agentcage writes"
    )


def test_quadlet_generator_missing_and_the_rootless_one() -> None:
    runner = healthy()
    runner.executables.discard("/usr/lib/systemd/system-generators/podman-system-generator")
    finding = host_check.check_quadlet(probe(runner), (4, 9, 3))
    assert finding.status == "warn" and "--reinstall podman" in dict(finding.fixes)["Debian/Ubuntu"]
    rootless = host_check.check_quadlet(probe(runner, rootless=True), (4, 9, 3))
    assert rootless.status == "pass" and "user-generators" in rootless.detail


def test_cgroup_v1_warns_and_missing_delegation_fails_rootless() -> None:
    runner = healthy()
    del runner.files["/sys/fs/cgroup/cgroup.controllers"]
    v1 = host_check.check_cgroups(probe(runner))
    assert v1.status == "warn" and "Fedora" in labels(v1)
    assert "cannot enforce" in host_check.check_cgroups(probe(runner, rootless=True)).detail
    runner = healthy(rootless=True)
    user = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"
    runner.files[user] = "cpu pids\n"
    finding = host_check.check_cgroups(probe(runner, rootless=True))
    assert finding.status == "fail"
    assert "user@1000.service lacks the memory controller" in finding.detail
    assert "Delegate=cpu cpuset io memory pids" in dict(finding.fixes)["all"]


def test_rootless_needs_subids_and_newuidmap() -> None:
    assert host_check.check_rootless(probe(healthy())).detail == "rootful: no sub-UIDs needed"
    runner = healthy(rootless=True)
    assert host_check.check_rootless(probe(runner, rootless=True)).status == "pass"
    runner.files["/etc/subgid"] = "alice:100000:1000\nbob:200000:65536\n"
    finding = host_check.check_rootless(probe(runner, rootless=True))
    assert finding.status == "fail" and "/etc/subgid" in finding.detail
    assert dict(finding.fixes)["all"].endswith("--add-subgids 100000-165535 alice")
    runner = healthy(rootless=True)
    runner.executables.discard("/usr/bin/newuidmap")
    finding = host_check.check_rootless(probe(runner, rootless=True))
    assert finding.detail == "newuidmap missing"
    assert dict(finding.fixes) == {
        "Debian/Ubuntu": "sudo apt-get install uidmap",
        "Fedora": "sudo dnf install shadow-utils",
    }


def test_a_host_without_nsenter_fails_naming_util_linux() -> None:
    runner = healthy()
    assert host_check.check_nsenter(probe(runner)).detail == "/usr/bin/nsenter"
    runner.executables.discard("/usr/bin/nsenter")
    finding = host_check.check_nsenter(probe(runner))
    assert finding.status == "fail" and "default deny" in finding.detail
    assert "util-linux" in dict(finding.fixes)["Debian/Ubuntu"]


def test_cni_and_missing_aardvark_fail() -> None:
    runner = healthy()
    runner.answers[("podman", "info")] = info(backend="cni")
    runner.executables.discard("/usr/lib/podman/aardvark-dns")
    net = host_check.check_netavark(host_check.podman_facts(probe(runner)))
    assert net.status == "fail" and net.detail.endswith("cni")
    assert "netavark aardvark-dns" in dict(net.fixes)["Fedora"]
    assert host_check.check_aardvark(probe(runner)).status == "fail"


def test_tun_matters_only_rootless() -> None:
    runner = healthy()
    runner.devices.clear()
    assert host_check.check_tun(probe(runner)).status == "pass"
    missing = host_check.check_tun(probe(runner, rootless=True))
    assert missing.status == "fail" and "modprobe tun" in dict(missing.fixes)["all"]
    runner.devices["/dev/net/tun"] = ""
    mode = host_check.check_tun(probe(runner, rootless=True))
    assert mode.status == "fail" and dict(mode.fixes)["all"] == "sudo chmod 0666 /dev/net/tun"


@pytest.mark.parametrize(("gib", "status"), [(1, "fail"), (3, "warn"), (20, "pass")])
def test_free_disk(gib: int, status: str) -> None:
    runner = healthy()
    runner.answers[("stat", "-f")] = done(f"{gib * 262144} 4096\n")
    finding = host_check.check_disk(
        probe(runner), host_of(runner), host_check.podman_facts(probe(runner))
    )
    assert finding.status == status
    assert finding.detail.startswith(f"{gib}.0 GiB free at /var/lib/containers")


def test_disk_through_a_host_container_also_measures_the_shared_image_store() -> None:
    runner = healthy()
    runner.answers[("stat", "-f", "-c", "%a %S", "/var/lib/shared")] = done("262144 4096\n")
    finding = host_check.check_disk(
        probe(runner), host_of(runner, host_container=BOX), host_check.podman_facts(probe(runner))
    )
    assert finding.status == "fail" and "at /var/lib/shared" in finding.detail


def _config(volume: str) -> CageConfig:
    text = (
        f"name: demo\ncontainer: {{image: x, volumes: ['{volume}']}}\ndomains: {{allow: [a.com]}}"
    )
    return parse_config(text, "c.yaml", context=LoadContext(check_paths=False))


def test_bind_mounts_must_be_shared_with_the_host_container() -> None:
    host = host_of(healthy(), host_container=BOX)
    shared = host_check.check_shares(host, _config("/work/agent:/app:ro"))
    assert shared is not None and shared.status == "pass"
    unseen = host_check.check_shares(host, _config("/srv/agent:/app:ro"))
    assert unseen is not None and unseen.status == "fail"
    assert unseen.detail == "agentcage-host cannot see /srv/agent"
    assert dict(unseen.fixes)["all"] == (
        "agentcage host stop && agentcage host start --share /work --share /srv/agent"
    )
    assert host_check.check_shares(host_of(healthy()), _config("/srv/a:/app")) is None


def test_require_ready_names_every_failure_and_its_fix_and_reports_warnings() -> None:
    runner = healthy()
    runner.files["/proc/1/comm"] = "init\n"
    runner.answers[("podman", "info")] = info("4.3.1")
    del runner.files["/sys/fs/cgroup/cgroup.controllers"]
    with pytest.raises(HostError) as caught:
        require_ready(host_of(runner))
    message = caught.value.message
    assert "[fail] systemd: PID 1 is 'init'" in message
    assert "quadlet" not in message  # a warning now: plain services on Podman 4.3
    assert "cgroups" not in message  # a warning, not a failure
    said: list[str] = []
    require_ready(host_of(healthy(), prefix=BOX.exec_prefix, host_container=BOX), None, said.append)
    assert said == [f"warning: isolation: {isolation_note('agentcage-host')}"]


def test_a_user_manager_still_starting_is_a_warning() -> None:
    runner = healthy(rootless=True)
    runner.answers[("systemctl", "--user")] = done("starting\n", 1)
    finding = host_check.check_systemd(probe(runner, rootless=True), host_of(runner, True))
    assert finding.status == "warn" and finding.detail.endswith("but starting")


def test_podman_is_asked_once_for_version_backend_and_store() -> None:
    runner = healthy()
    findings = {f.name: f for f in run_checks(host_of(runner))}
    assert len(runner.commands("podman", "info")) == 1 and not runner.commands("podman", "version")
    assert findings["podman"].detail == "Podman 5.4.2"
    assert findings["disk"].detail.endswith("/var/lib/containers")


def test_a_failing_podman_info_still_finds_podman_and_fails_netavark_with_its_words() -> None:
    runner = healthy()
    runner.answers[("podman", "info")] = Completed((), 125, "", "Error: database is locked\n")
    findings = {f.name: f for f in run_checks(host_of(runner))}
    assert findings["podman"].detail == "Podman 5.4.2"  # from `podman version`
    assert findings["netavark"].status == "fail"
    assert findings["netavark"].detail.endswith("database is locked")
