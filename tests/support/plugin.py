"""pytest fixtures for the fake internet; import them into a conftest.py:

    from tests.support.plugin import fake_ca, fake_dns, upstream  # noqa: F401

`fake_ca`: a session trustme CA. `fake_dns`: a module-scoped `FakeDns` mapping the
default fake names to 127.0.0.1. `upstream`: a module-scoped `Upstream` with a
certificate for those names; call `upstream.clear()` to forget earlier requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from tests.support.fake_dns import DEFAULT_NAMES, FakeDns
from tests.support.upstream import Upstream


@pytest.fixture(scope="session")
def fake_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def fake_dns() -> Iterator[FakeDns]:
    with FakeDns() as server:
        yield server


@pytest.fixture(scope="module")
def upstream(fake_ca: trustme.CA) -> Iterator[Upstream]:
    with Upstream(fake_ca, list(DEFAULT_NAMES)) as server:
        yield server
