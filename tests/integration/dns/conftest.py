"""Fixtures for the DNS sidecar tests: the fake upstream (`tests.support.fake_dns`) and the
real sidecar (`tests.support.dns_sidecar`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from tests.support.dns_sidecar import RunningSidecar
from tests.support.fake_dns import FakeDns


@pytest.fixture
def upstream() -> Iterator[FakeDns]:
    with FakeDns.answering_anything() as server:
        yield server


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., RunningSidecar]]:
    started: list[RunningSidecar] = []

    def start(config: Path, port: int | None = None, args: Sequence[str] = ()) -> RunningSidecar:
        audit = tmp_path / f"audit-{len(started)}.jsonl"
        sidecar = RunningSidecar(config, audit, port, args=args)
        started.append(sidecar)
        return sidecar

    yield start
    for sidecar in started:
        sidecar.stop()
