"""The plain systemd services (service_units.py) match what Podman's quadlet generator makes.

For each example config (and a hostile one), rootful and rootless, the cage's quadlet
files go through the real generator (trixie's, `quadlet -dryrun`, installed by
scripts/setup-host), and its services are compared with ours: the same services, the
same `podman` arguments (per option, in order; options in any order), the same
dependencies, restart policy and service settings. The only differences allowed are the
ones Podman 4.3 forces, each checked here to be replaced by its equivalent.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from agentcage.cage.layout import HostPaths
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.service_units import PODMAN, SHELL, to_services
from agentcage.cage.topology import Topology, subnets_for
from agentcage.cage.unit import split_words
from tests.integration.cage.test_quadlet_dryrun import IMAGES, QUADLET, _config

pytestmark = pytest.mark.integration

HARNESS_IMAGE = "localhost/agentcage-harness:latest"
# Options of `podman run` / `network create` / `volume create` that take a value.
VALUED = frozenset(
    {
        *("--name", "--cgroups", "--pull", "--pids-limit", "--entrypoint", "--tmpfs", "--dns"),
        *("--network", "--security-opt", "--cap-drop", "--cap-add", "--sysctl", "--user"),
        *("--publish", "-v", "--env", "--label", "--secret", "--health-cmd", "--health-interval"),
        *("--health-startup-cmd", "--health-startup-interval", "--health-startup-retries"),
        *("--health-startup-success", "--subnet"),
    }
)
SWITCHES = frozenset(
    {"--replace", "--rm", "-d", "--init", "--read-only", "--internal", "--disable-dns", "--ignore"}
)
# Podman >= 4.7 only; replaced by the ExecStartPost readiness loop (checked below).
STARTUP = ("--health-startup-cmd", "--health-startup-interval", "--health-startup-retries")
NETWORK_ONLINE = {"network-online.target", "podman-user-wait-network-online.service"}
Service = dict[str, dict[str, list[str]]]


def _units(name: str, rootless: bool, tmp_path: Path, cgroups: bool = True) -> CageUnits:
    config = _config(name, tmp_path)
    return build_units(
        CageSpec(
            config,
            Topology(config.name, 3, *subnets_for(3)),
            IMAGES,
            HostPaths.under(tmp_path / "state"),
            tuple(rule.env for rule in config.secret_injection),
            wanted_by="default.target" if rootless else "multi-user.target",
            upstream_ca=True,
            cgroups=cgroups,
        )
    )


def _generated(units: CageUnits, rootless: bool, tmp_path: Path) -> dict[str, Service]:
    """What the real quadlet generator makes of `units`: service name -> parsed service."""
    assert QUADLET.is_file(), f"{QUADLET} missing: run `sudo scripts/setup-host`"
    unit_dir = tmp_path / "quadlet"
    unit_dir.mkdir()
    for filename, text in units.rendered().items():
        (unit_dir / filename).write_text(text)
    result = subprocess.run(
        [str(QUADLET), "-dryrun", *(["-user"] if rootless else [])],
        env={"QUADLET_UNIT_DIRS": str(unit_dir), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "converting" not in result.stderr, result.stderr
    services = {}
    for block in result.stdout.split("\n---")[0:]:
        header, _, body = block.strip().lstrip("-").partition("---\n")
        services[header] = _parse(body)
    return services


def _parse(text: str) -> Service:
    """A unit file as {section: {key: [raw values, in order]}}."""
    sections: Service = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), defaultdict(list))
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current[key].append(value)
    return sections


def _options(argv: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(option -> its values in order, the words after the options)."""
    options: dict[str, list[str]] = defaultdict(list)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        word = argv[i]
        if "=" in word:
            flag, _, value = word.partition("=")
            options[flag].append(value)
        elif word in VALUED:
            options[word].append(argv[i + 1])
            i += 1
        else:
            assert word in SWITCHES, f"unknown podman option {word}: teach this test its arity"
            options[word].append("")
        i += 1
    return options, argv[i:]


def _command(service: Service, key: str = "ExecStart") -> list[str]:
    """The command line as systemd runs it: words unquoted, `$$` and `%%` undone."""
    (line,) = service["Service"][key]
    return [w.replace("$$", "$").replace("%%", "%") for w in split_words(line)]


def _compare_unit(ours: Service, theirs: Service) -> None:
    for key in ("Requires", "After", "Wants", "RequiresMountsFor", "Description"):
        mine = set(ours["Unit"].get(key, [])) - NETWORK_ONLINE
        generated = set(theirs["Unit"].get(key, [])) - NETWORK_ONLINE
        assert mine == generated, key
    for section in ("Service", "Install"):
        for key, values in theirs.get(section, {}).items():
            if key not in ("ExecStart",):
                assert ours[section].get(key) == values, f"[{section}] {key}"
        extra = set(ours.get(section, {})) - set(theirs.get(section, {}))
        assert extra <= {"ExecStartPost", "ExecStartPre"}


def _compare_run(name: str, ours: Service, theirs: Service) -> None:
    mine, their_argv = _command(ours), _command(theirs)
    assert mine[:2] == their_argv[:2] == [PODMAN, "run"]
    # Podman 4.3 refuses a --cidfile that exists; the generator's units rely on 4.4+.
    assert _command(ours, "ExecStartPre") == ["/bin/rm", "-f", "%t/%N.cid"]
    my_options, my_rest = _options(mine[2:])
    their_options, their_rest = _options(their_argv[2:])
    assert my_rest == their_rest  # image and command, word for word
    if their_options.get("--sdnotify") == ["healthy"]:
        # Podman 4.3 has neither: conmon notifies, then ExecStartPost waits for the
        # startup check, run in the container as Podman would, as often and as fast.
        their_options["--sdnotify"] = ["conmon"]
        startup = {flag: their_options.pop(flag) for flag in STARTUP}
        assert their_options.pop("--health-startup-success") == ["1"]
        (script,) = [w for w in _command(ours, "ExecStartPost") if w not in (SHELL, "-c")]
        check = shlex.join([PODMAN, "exec", name, SHELL, "-c", *startup[STARTUP[0]]])
        retries, interval = startup[STARTUP[2]][0], startup[STARTUP[1]][0]
        assert script.startswith(f"for i in $(seq {retries}); do {check} && exit 0; ")
        assert f"sleep {interval}; done;" in script and script.endswith("exit 1")
    else:  # only the unit's own (the steering one-shots), as the generator passes them on
        assert ours["Service"].get("ExecStartPost") == theirs["Service"].get("ExecStartPost")
    assert my_options == their_options


def _compare_create(ours: Service, theirs: Service) -> None:
    shell, dash_c, script = _command(ours)
    assert (shell, dash_c) == (SHELL, "-c")
    exists, create = script.split(" || exec ")
    mine = shlex.split(create)
    their_argv = _command(theirs)
    kind, name = their_argv[1], their_argv[-1]
    assert shlex.split(exists) == [PODMAN, kind, "exists", name]
    assert mine[:3] == their_argv[:3] and mine[-1] == name
    their_options, _ = _options(their_argv[3:-1])
    assert their_options.pop("--ignore") == [""]  # Podman 4.3: the `exists ||` instead
    assert _options(mine[3:-1])[0] == their_options


def _check(units: CageUnits, rootless: bool, tmp_path: Path) -> dict[str, str]:
    theirs = _generated(units, rootless, tmp_path)
    ours_text = to_services(units, rootless=rootless).rendered()
    ours = {name: _parse(text) for name, text in ours_text.items()}
    assert set(ours) == set(theirs)
    for service_name, generated in theirs.items():
        mine = ours[service_name]
        _compare_unit(mine, generated)
        if _command(generated)[1] == "run":
            container = _options(_command(generated)[2:])[0]["--name"][0]
            _compare_run(container, mine, generated)
        else:
            _compare_create(mine, generated)
    return ours_text


@pytest.mark.parametrize("name", ["basic", "openclaw", "hostile"])
@pytest.mark.parametrize("rootless", [False, True])
def test_services_match_the_quadlet_generator(name: str, rootless: bool, tmp_path: Path) -> None:
    _check(_units(name, rootless, tmp_path), rootless, tmp_path)


def test_services_match_without_cgroups(tmp_path: Path) -> None:
    ours = _check(_units("openclaw", True, tmp_path, cgroups=False), True, tmp_path)
    assert sum("--cgroups disabled" in text for text in ours.values()) == 4


@pytest.mark.parametrize("name", ["basic", "openclaw"])
def test_systemd_analyze_verify_accepts_the_services(name: str, tmp_path: Path) -> None:
    """systemd itself (the harness image's) loads every service: keys, quoting, binaries."""
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    services = to_services(_units(name, False, tmp_path), rootless=False).rendered()
    for filename, text in services.items():
        (unit_dir / filename).write_text(text)
    (tmp_path / "state").mkdir(exist_ok=True)
    inside = "/etc/systemd/system/agentcage"
    result = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "-v", f"{unit_dir}:{inside}:ro",
         HARNESS_IMAGE, "sh", "-c",
         f"cp {inside}/* /etc/systemd/system/ && cd /etc/systemd/system && "
         f"systemd-analyze verify --man=no {' '.join(sorted(services))}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # verify exits 0 on warnings (an unknown key, a bad quote): any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
