"""A patch of mitmproxy's internals runs once, and only against the pinned version."""

from __future__ import annotations

import mitmproxy.version
import pytest

from agentcage.proxy.mitmproxy_pin import PINNED, patches_mitmproxy


def test_a_patch_is_applied_once() -> None:
    applied: list[str] = []

    @patches_mitmproxy
    def install() -> None:
        """Doc kept."""
        applied.append("patched")

    install()
    install()
    assert applied == ["patched"]
    assert install.__doc__ == "Doc kept."


def test_another_mitmproxy_is_refused_and_nothing_is_patched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[str] = []

    @patches_mitmproxy
    def install() -> None:
        applied.append("patched")

    monkeypatch.setattr(mitmproxy.version, "VERSION", "12.0.0")
    with pytest.raises(RuntimeError, match=f"needs mitmproxy {PINNED}, found 12.0.0"):
        install()
    assert applied == []
    monkeypatch.setattr(mitmproxy.version, "VERSION", PINNED)
    install()  # not marked as applied by the refused call
    assert applied == ["patched"]
