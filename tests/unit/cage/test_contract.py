"""The units' command lines against the real commands and images that run them.

Each sidecar command line a unit holds is parsed by the real click command it names:
it must be accepted, and set every option of the command to what the unit intends (no
option left to a default the unit did not choose). A renamed or dropped option in cli/
fails here, not in a running cage.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import pytest

from agentcage.cage import contract
from agentcage.cage.contract import ProxyRunArgs
from agentcage.cage.images import RUNTIME_PACKAGES
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.topology import DNS_PORT, PROXY_PORT, Topology, subnets_for
from agentcage.cage.unit import UnitFile, parse
from agentcage.cli.main import cli
from agentcage.cli.proxy_cmd import _listen
from agentcage.config import LoadContext, parse_config
from agentcage.dns import Listen

REPO = Path(__file__).resolve().parents[3]
TOPOLOGY = Topology("demo", 4, *subnets_for(4))
CONFIG = """\
name: demo
container: {image: localhost/agent:a, ports: ["127.0.0.1:8000:8000"]}
secret_injection: [{env: API_KEY, inject_to: [api.example.com]}]
domains: {allow: [api.example.com]}
"""


def _units(upstream_ca: bool) -> dict[str, UnitFile]:
    config = parse_config(CONFIG, "c.yaml", context=LoadContext())
    images = Images("localhost/p:1", "localhost/d:1", "localhost/agent:a")
    paths = HostPaths.under(Path("/state/demo"))
    spec = CageSpec(config, TOPOLOGY, images, paths, ("API_KEY",), upstream_ca=upstream_ca)
    rendered = build_units(spec).rendered()
    return {
        role: parse(rendered[f"agentcage-demo-{role}.container"])
        for role in ("proxy", "dns", "ports")
    }


def _exec(unit: UnitFile) -> tuple[str, ...]:
    (words,) = unit.get("Container", "Exec")
    assert isinstance(words, tuple)
    return words


def _command(argv: Sequence[str]) -> tuple[click.Command, list[str]]:
    """The click command `agentcage ARGV` runs, and the words left for it."""
    command: click.Command = cli
    words = list(argv)
    while isinstance(command, click.Group):
        name, *words = words
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"agentcage has no command {name!r}"
        command = found
    return command, words


def _params(argv: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """What the real command receives for `argv`; click raises if it rejects it."""
    command, words = _command(argv)
    for param in command.params:
        # The paths are inside the container: the test host need not have them.
        if isinstance(param.type, click.Path):
            monkeypatch.setattr(param.type, "exists", False)
    with command.make_context(str(command.name), words) as ctx:
        return dict(ctx.params)


def _meaning(argv: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    params = _params(argv, monkeypatch)
    return {name: None if value is None else str(value) for name, value in params.items()}


def _intended(args: object) -> dict[str, str | None]:
    """The dataclass's fields as `_meaning` gives them: text, or None."""
    fields = dataclasses.asdict(args)  # type: ignore[call-overload]
    return {name: None if value is None else str(value) for name, value in fields.items()}


@pytest.mark.parametrize("upstream_ca", [False, True])
def test_the_proxy_unit_runs_proxy_run_as_intended(
    upstream_ca: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    intended = contract.proxy_run(TOPOLOGY, upstream_ca, transparent=True)
    argv = _exec(_units(upstream_ca)["proxy"])
    assert argv == intended.argv()
    assert _meaning(argv, monkeypatch) == _intended(intended)
    assert (intended.upstream_ca is not None) == upstream_ca
    assert _listen(intended.listen) == (TOPOLOGY.proxy_ip, PROXY_PORT)
    assert intended.transparent == TOPOLOGY.proxy_ip


def test_the_dns_unit_runs_dns_run_as_intended(monkeypatch: pytest.MonkeyPatch) -> None:
    intended = contract.dns_run(TOPOLOGY, transparent=True)
    argv = _exec(_units(False)["dns"])
    assert argv == intended.argv()
    assert _meaning(argv, monkeypatch) == _intended(intended)
    assert intended.steer_to == TOPOLOGY.proxy_ip
    assert Listen.parse(intended.listen) == Listen(ipaddress.ip_address(TOPOLOGY.dns_ip), DNS_PORT)


def test_the_argv_check_catches_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tests above rely on: click refuses what the command does not declare."""
    argv = contract.dns_run(TOPOLOGY).argv()
    renamed = [("--listen-on" if w == contract.LISTEN_OPTION else w) for w in argv]
    with pytest.raises(click.NoSuchOption):
        _params(renamed, monkeypatch)
    at = argv.index(contract.CONFIG_OPTION)
    with pytest.raises(click.MissingParameter):
        _params(argv[:at] + argv[at + 2 :], monkeypatch)
    # Two values swapped: accepted, but no longer what the unit meant.
    intended = contract.proxy_run(TOPOLOGY, False)
    words = list(intended.argv())
    a, b = words.index(contract.AUDIT_LOG_OPTION), words.index(contract.CA_DIR_OPTION)
    words[a + 1], words[b + 1] = words[b + 1], words[a + 1]
    assert _meaning(words, monkeypatch) != _intended(intended)
    # An option the unit does not pass shows up as a parameter it did not intend.
    fewer = dataclasses.replace(intended, upstream_ca=None)
    assert set(_meaning(fewer.argv(), monkeypatch)) == {
        f.name for f in dataclasses.fields(ProxyRunArgs)
    }


def test_health_checks_and_relay_run_our_modules_with_the_image_python() -> None:
    units = _units(False)
    for role in ("proxy", "dns"):
        (command,) = units[role].get("Container", "HealthCmd")
        words = shlex.split(str(command))
        assert words[:3] == [contract.PYTHON, "-m", contract.PROBE_MODULE], role
        assert words[3] == "tcp"
    assert units["ports"].get("Container", "Entrypoint") == [contract.PYTHON]
    assert _exec(units["ports"])[:2] == ("-m", contract.RELAY_MODULE)
    modules = (
        contract.PROBE_MODULE, contract.RELAY_MODULE, contract.NETCHECK_MODULE,
        contract.STEERING_MODULE,
    )  # fmt: skip
    for module in modules:
        assert callable(importlib.import_module(module).main), module


def test_the_images_provide_what_the_units_assume() -> None:
    runtime = (REPO / "images/runtime/Containerfile").read_text()
    # Default deny's setup (steering.py) calls nft and ip, on either kind of base.
    assert {"nftables", "iproute2"} <= set(RUNTIME_PACKAGES)
    assert "command -v nft" in runtime and "nftables iproute2" in runtime
    assert f"python3 -m venv {Path(contract.VENV_BIN).parent}" in runtime
    user = contract.SIDECAR_USER
    assert re.search(rf"--uid {user} --gid {user}\b", runtime)
    for role in ("proxy", "dns"):
        containerfile = (REPO / "images" / role / "Containerfile").read_text()
        assert f'ENTRYPOINT ["{contract.VENV_BIN}/agentcage"]' in containerfile, role
        assert f"USER {user}:{user}" in containerfile, role


_PARSE_ONLY = """
import json, sys
import click
from agentcage.cli.main import cli
command, words = cli, json.loads(sys.argv[1])
while isinstance(command, click.Group):
    name, *words = words
    command = command.get_command(click.Context(command), name)
for param in command.params:
    if isinstance(param.type, click.Path):
        param.type.exists = False  # the paths are inside the container
command.make_context(command.name, words).close()
print(json.dumps("difflib" in sys.modules))
"""


@pytest.mark.parametrize("role", ["proxy", "dns"])
def test_a_sidecar_parses_its_unit_argv_without_a_did_you_mean(role: str) -> None:
    """Click builds a did-you-mean message (importing difflib, held for the sidecar's
    whole life) for every option it first fails to find as a long one, as `-c`."""
    args = contract.proxy_run(TOPOLOGY, False) if role == "proxy" else contract.dns_run(TOPOLOGY)
    found = subprocess.run(
        [sys.executable, "-c", _PARSE_ONLY, json.dumps(list(args.argv()))],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(found.stdout) is False
