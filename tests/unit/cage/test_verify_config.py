"""What `cage verify` reads of the stored config as JSON agrees with the schema's reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentcage.cage import verify_config
from agentcage.cage.state import CONFIG_NORMALIZED, StateStore, config_json
from agentcage.config import load_config
from agentcage.errors import StateError

CONFIGS = {
    "allowlist, transparent, an opaque port": (
        "domains:\n  allow: [10.0.0.0/8, github.com]\n"
        "network:\n  ports:\n    - {port: 22, host: github.com, protocol: opaque}\n"
        "secret_injection:\n  - {env: API_KEY, inject_to: [api.example.com]}\n"
        "  - {env: OTHER, placeholder: other-token, inject_to: [x.example.com]}\n"
    ),
    "blocklist, not transparent": (
        "domains:\n  block: [evil.example]\nnetwork:\n  transparent: false\n"
    ),
    "microVM": "isolation: firecracker\ndomains:\n  allow: [github.com]\n",
}


def _stored(tmp_path: Path, extra: str) -> tuple[StateStore, Path]:
    path = tmp_path / "demo.yaml"
    path.write_text("name: demo\ncontainer:\n  image: localhost/agent:t\n" + extra)
    store = StateStore(tmp_path / "state")
    store.path("demo").mkdir(parents=True)
    stored = store.path("demo") / CONFIG_NORMALIZED
    stored.write_text(config_json(load_config(path)))
    return store, stored


@pytest.mark.parametrize("extra", CONFIGS.values(), ids=CONFIGS.keys())
def test_it_reads_what_the_schema_reads(tmp_path: Path, extra: str) -> None:
    store, _ = _stored(tmp_path, extra)
    config = store.load_config("demo")
    read = verify_config.load(store, "demo")
    assert read.name == config.name
    assert read.microvm is (config.isolation == "firecracker")
    assert read.transparent is config.network.transparent
    assert read.listener_ports == config.network.listener_ports()
    assert read.placeholders == tuple((r.env, r.token) for r in config.secret_injection)
    names = [e for e in config.domains.entries if not e[0].isdigit()]
    allowlist = config.domains.mode == "allowlist"
    assert read.allowed_host == (names[0] if allowlist and names else None)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["network"].pop("transparent"),
        lambda d: d["network"].update(ports=[{"port": "22"}]),
        lambda d: d["network"].update(ports=[{"port": True}]),
        lambda d: d["secret_injection"].append({"env": "X", "placeholder": None}),
        lambda d: d["domains"].update(list="github.com"),
        lambda d: d.pop("isolation"),
    ],
)
def test_a_damaged_config_is_an_error_not_a_default(
    tmp_path: Path, damage: Callable[[dict[str, Any]], object]
) -> None:
    store, stored = _stored(tmp_path, CONFIGS["allowlist, transparent, an opaque port"])
    data = json.loads(stored.read_text())
    damage(data)
    stored.write_text(json.dumps(data))
    with pytest.raises(StateError, match="damaged state"):
        verify_config.load(store, "demo")


def test_no_cage_no_config(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no cage named 'demo'"):
        verify_config.load(StateStore(tmp_path / "state"), "demo")
