"""A snapshot reads like the validated config it was made of, and stays as frozen."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentcage.config import LoadContext, load_config
from agentcage.config.snapshot import Snapshot, snapshot_kind, snapshot_of

ROOT = Path(__file__).resolve().parents[3]


def _example(name: str, tmp_path: Path) -> Any:
    (tmp_path / "openclaw-workspace").mkdir(exist_ok=True)
    path = ROOT / "examples" / name / "config.yaml"
    return load_config(
        path, context=LoadContext(base_dir=path.parent, environ={"HOME": str(tmp_path)})
    )


def _same(model: Any, snap: Any, where: str) -> None:
    """Every field and property of `model`, however deep, read the same from `snap`."""
    if isinstance(model, BaseModel):
        assert isinstance(snap, Snapshot), where
        assert snapshot_kind(snap) == type(model).__name__, where
        names = list(type(model).model_fields)
        names += [
            n
            for c in type(model).__mro__
            if c.__module__.startswith("agentcage.")
            for n, m in vars(c).items()
            if isinstance(m, property) and not n.startswith("_")
        ]
        for name in names:
            _same(getattr(model, name), getattr(snap, name), f"{where}.{name}")
    elif isinstance(model, list | tuple):
        assert len(model) == len(snap), where
        for i, (m, s) in enumerate(zip(model, snap, strict=True)):
            _same(m, s, f"{where}[{i}]")
    elif isinstance(model, dict):
        assert model.keys() == snap.keys(), where
        for key in model:
            _same(model[key], snap[key], f"{where}[{key!r}]")
    else:
        assert model == snap and type(model) is type(snap), where


@pytest.mark.parametrize("example", ["basic", "openclaw"])
def test_a_snapshot_reads_like_the_config_even_after_pickling(example: str, tmp_path: Path) -> None:
    config = _example(example, tmp_path)
    snap = pickle.loads(pickle.dumps(snapshot_of(config)))
    _same(config, snap, "config")
    assert snap.domains.learn_notice == config.domains.learn_notice  # a property
    assert snap.secrets.enabled == config.secrets.enabled


def test_a_snapshot_is_frozen_comparable_and_hashable_like_the_model(tmp_path: Path) -> None:
    config = _example("basic", tmp_path)
    snap = snapshot_of(config)
    with pytest.raises(AttributeError, match="frozen"):
        snap.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del snap.name
    assert snap == snapshot_of(config) and snap != snapshot_of(
        config.model_copy(update={"name": "x"})
    )
    for name in type(config).model_fields:  # hashable where the model is, and alike
        section = getattr(config, name)
        if isinstance(section, BaseModel):
            snapped = getattr(snap, name)
            assert _hashable(section) == _hashable(snapped), name
            assert not _hashable(snapped) or hash(snapped) == hash(snapshot_of(section))
    with pytest.raises(AttributeError):
        snap.effective_dns_servers()  # methods stay behind: fail closed, not a guess


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
