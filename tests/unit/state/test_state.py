"""The deployment state store: XDG location, permissions, atomic writes, round trip."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agentcage.cage.state import StateStore, config_home, write_atomic
from agentcage.config import LoadContext, parse_config
from agentcage.errors import StateError

CONFIG = "name: demo\ncontainer: {image: x}\ndomains: {allow: [a.com]}\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_home_honours_xdg() -> None:
    assert config_home({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg/agentcage")
    assert config_home({"HOME": "/h"}) == Path("/h/.config/agentcage")
    # A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
    assert config_home({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path("/h/.config/agentcage")


def test_save_and_load_round_trip_with_private_permissions(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "agentcage")
    cfg = parse_config(CONFIG, "c.yaml", context=LoadContext())
    directory = store.save_config(cfg, CONFIG)
    assert store.names() == ["demo"] and store.exists("demo")
    assert store.load_config("demo") == cfg
    assert (directory / "config.yaml").read_text() == CONFIG
    for path in (store.root, store.deployments, directory):
        assert mode(path) == 0o700
    for name in ("config.yaml", "config.json"):
        assert mode(directory / name) == 0o600
    store.remove("demo")
    assert store.names() == []


def test_missing_and_bad_names(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(StateError, match="no cage named 'ghost'"):
        store.load_config("ghost")
    with pytest.raises(StateError, match="not a cage name"):
        store.path("../etc")
    with pytest.raises(StateError, match="not a plain file name"):
        store.write("demo", "../x", "data")


def test_damaged_state_is_reported(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.write("demo", "config.json", "{not json")
    with pytest.raises(StateError, match="damaged state"):
        store.load_config("demo")


def test_write_atomic_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_atomic(target, "old")
    with pytest.raises(TypeError):
        write_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
