"""Debian's version order and `Packages` files, as `deps check` reads them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from agentcage.deps.debian import compare_versions, index_versions, newest, read_index
from agentcage.deps.pins import Checkout
from agentcage.errors import DepsError


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0", "1.0", 0),
        ("1.0~rc1", "1.0", -1),  # ~ sorts before everything, even the end
        ("1.0~~", "1.0~", -1),
        ("1:1.0", "2.0", 1),  # the epoch first
        ("3.11.2-1+b1", "3.11.2-1", 1),
        ("2.90-4", "2.90-4~deb12u1", 1),
        ("1.0a", "1.0", 1),
        ("1.0-1", "1.0-10", -1),
        ("1.2", "1.10", -1),  # numbers, not text
        ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", -1),
        ("1.0+dfsg", "1.0", 1),
        ("a1", "1", 1),  # letters before non-letters, but after the end
    ],
)
def test_versions_sort_as_dpkg_sorts_them(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order
    assert compare_versions(b, a) == -order


def test_an_index_gives_the_highest_version_of_each_wanted_package(tmp_path: Path) -> None:
    text = (
        "Package: curl\nVersion: 7.88.1-10+deb12u8\nDescription: x\n continued: not a field\n\n"
        "Package: curl\nVersion: 7.88.1-10+deb12u12\n\n"
        "Package: other\nVersion: 9\n"
    )
    path = tmp_path / "Packages.gz"
    path.write_bytes(gzip.compress(text.encode()))
    found = index_versions(read_index(str(path)), ["curl", "python3"])
    assert found == {"curl": "7.88.1-10+deb12u12"}
    assert newest([found, {"curl": "7.88.1-10+deb12u9", "python3": "3.11.2-1"}]) == {
        "curl": "7.88.1-10+deb12u12",
        "python3": "3.11.2-1",
    }


def test_an_unreadable_index_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DepsError) as raised:
        read_index(str(tmp_path / "missing"))
    assert raised.value.hint and "--debian-index" in raised.value.hint
    (tmp_path / "bad.xz").write_bytes(b"not xz")
    with pytest.raises(DepsError, match="does not decompress"):
        read_index(str(tmp_path / "bad.xz"))


def test_this_checkout_s_pins_are_found() -> None:
    checkout = Checkout(Path(__file__).resolve().parents[3])
    (pin,) = checkout.image_pins()
    assert pin.constant == "REGISTRY_BASE"
    assert pin.reference == "docker.io/library/python:3.11-slim-bookworm"
    assert pin.digest.startswith("sha256:") and len(pin.digest) == 71
    suites = checkout.debian_packages()
    assert set(suites) == {"bookworm", "trixie"}  # sidecars and agent, Debian 12 host; host
    assert {"python3", "dnsmasq-base", "curl", "slirp4netns"} <= set(suites["bookworm"])
    assert {"podman", "passt", "systemd"} <= set(suites["trixie"])
    assert {"virtiofsd", "libc6"} <= set(suites["trixie"])  # the microVM container's
    assert checkout.mitmproxy_pin() == "11.0.2"
    parts = {part.constant: part for part in checkout.guest_parts()}
    assert parts["KERNEL"].package.startswith("linux-image-") and len(parts["KERNEL"].sha256) == 64
    assert parts["BUSYBOX"].package == "busybox-static"
    assert checkout.locked_packages() > 50


def test_indexes_are_given_per_suite_or_for_all() -> None:
    from agentcage.deps.check import UpstreamSources

    sources = UpstreamSources(
        debian_indexes=["bookworm=http://m/b/Packages.xz", "/srv/Packages", "trixie=/t/P"]
    )
    assert sources.indexes_for("bookworm") == ["http://m/b/Packages.xz", "/srv/Packages"]
    assert sources.indexes_for("trixie") == ["/srv/Packages", "/t/P"]
    assert sources.indexes_for("sid") == ["/srv/Packages"]
