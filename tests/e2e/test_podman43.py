"""The end-to-end suite again, on a Debian 12 host: systemd 252 and Debian's own Podman 4.3.1.

Podman 4.3 has no quadlet, so cages there run as plain systemd services
(cage/service_units.py). The tests of test_cage.py (rootful), test_lifecycle.py and
test_rootless.py are taken over and run here unchanged, in their files' order, against a
`Podman43Harness`: this module's `harness`, `internet` and `cage` fixtures (conftest's
`host_fixtures`) take the place of the session's. Where the units live differs (quadlets
or services): the tests ask the harness (`unit_files`), and the first test here checks it.
"""

from __future__ import annotations

from tests.e2e import test_cage as rootful
from tests.e2e import test_lifecycle as lifecycle
from tests.e2e import test_rootless as rootless
from tests.e2e.conftest import host_fixtures
from tests.e2e.podman43 import Podman43Harness

harness, internet, cage = host_fixtures(Podman43Harness, "p43", "module")


def test_units_are_plain_services_on_podman_4_3(harness: Podman43Harness, cage: str) -> None:
    version = harness.exec("podman", "version", "--format", "{{.Client.Version}}")
    assert version.strip() == "4.3.1"
    services = sorted(path.name for path in harness.systemd_dir.iterdir())
    assert "agentcage-basic-agent.service" in services
    assert "agentcage-basic-int-network.service" in services
    assert not list(harness.quadlet_dir.iterdir())
    states = harness.exec("systemctl", "is-active", "agentcage-basic-agent", "agentcage-basic-dns")
    assert states.split() == ["active", "active"]


# Their fixtures, then their tests in their files' order (the last ones destroy the cage).
outcome = rootful.outcome
registry = lifecycle.registry
user = rootless.user
_QUADLET_ONLY = {"test_rootless_units_live_in_the_users_systemd"}
for _module in (rootful, lifecycle, rootless):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and _name not in _QUADLET_ONLY:
            globals()[_name] = _test


def test_no_service_file_is_left(harness: Podman43Harness) -> None:
    """After both cages are destroyed (test_cage.py checks only the quadlet directory)."""
    assert not list(harness.systemd_dir.iterdir())
    home = harness.workdir / "home" / "cage" / ".config" / "systemd" / "user"
    assert not list(home.glob("agentcage-*"))
