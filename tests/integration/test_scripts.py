"""scripts/bootstrap and scripts/setup-host, run for real where it needs no network.

The full bootstrap on clean Debian 12 and 13 (apt, Debian's Python, uv fetched from PyPI,
`uv tool install .`, `pipx install .`) needs the network and is `scripts/check-install`.
Here: which uv bootstrap trusts, that a wheel with the wrong hash is refused, and that
setup-host keeps a backup of a file it replaces.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "scripts" / "bootstrap"
# Debian's own Python and tools only: no pyenv, no uv, nothing from this machine's PATH.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _fake_uv(directory: Path, version: str) -> Path:
    """A `uv` that reports `version` and records how it was called."""
    directory.mkdir(parents=True)
    uv = directory / "uv"
    uv.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && echo "uv {version}" && exit 0\n'
        f'echo "$@" >> "{directory}/calls"\n'
    )
    uv.chmod(0o755)
    return uv


def _bootstrap(tmp_path: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BOOTSTRAP)],
        env={"PATH": path, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "c"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_recent_uv_on_path_is_used_as_it_is(tmp_path: Path) -> None:
    uv = _fake_uv(tmp_path / "bin", "0.13.9")
    result = _bootstrap(tmp_path, f"{uv.parent}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    (call,) = (uv.parent / "calls").read_text().splitlines()
    assert call.startswith("sync --frozen --python /usr/bin/python3")
    assert not (tmp_path / "c").exists()  # nothing fetched


def test_an_old_uv_is_passed_over_and_a_wheel_with_the_wrong_hash_refused(
    tmp_path: Path,
) -> None:
    old = _fake_uv(tmp_path / "bin", "0.4.0")
    # A wheel laid out like uv's, holding something else: it must never be unpacked.
    wheel = tmp_path / "uv-0.13.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("uv-0.13.9.data/scripts/uv", "#!/bin/sh\necho pwned\n")
    result = _bootstrap(tmp_path, f"{old.parent}:{SYSTEM_PATH}", AGENTCAGE_UV_URL=wheel.as_uri())
    assert result.returncode != 0
    assert "older than 0.13; using the pinned 0.13.9" in result.stderr
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert f"has sha256 {digest}, expected" in result.stderr
    assert not list((tmp_path / "c").rglob("uv"))  # nothing unpacked
    assert not (old.parent / "calls").exists()  # and the old uv never ran `sync`


def test_without_uv_it_fetches_the_pinned_wheel_and_never_runs_pip(tmp_path: Path) -> None:
    # Debian's Python is "externally managed" (PEP 668): `pip install uv` into it fails,
    # and a minimal system has no pip at all. The wheel here is not uv's: refused.
    wheel = tmp_path / "not-uv.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("uv-0.13.9.data/scripts/uv", "")
    result = _bootstrap(tmp_path, SYSTEM_PATH, AGENTCAGE_UV_URL=wheel.as_uri())
    assert result.returncode != 0
    assert f"fetching uv 0.13.9 into {tmp_path}/c/agentcage/uv-0.13.9" in result.stderr
    assert "expected d7f459fe" in result.stderr or "expected 5435c5ce" in result.stderr
    assert "pip" not in result.stderr and "externally-managed" not in result.stderr


def _write_if_changed() -> str:
    """setup-host's own function, taken from the script as it is."""
    text = (REPO / "scripts" / "setup-host").read_text()
    start = text.index("write_if_changed() {")
    return text[start : text.index("\n}\n", start) + 3]


def test_setup_host_backs_up_a_replaced_file_once(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "containers.conf"
    target.parent.mkdir()
    target.write_text("# the user's own\n")
    script = 'log() { echo "$*" >&2; }\n' + _write_if_changed()
    for content in ("ours, first", "ours, second", "ours, second"):
        result = subprocess.run(
            ["bash", "-c", f'{script}\nwrite_if_changed "$1" "$2"', "-", str(target), content],
            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert target.read_text() == content + "\n"
    # The original is kept, and never overwritten by a later run's file.
    assert (tmp_path / "etc" / "containers.conf.agentcage-backup").read_text() == (
        "# the user's own\n"
    )
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "containers.conf",
        "containers.conf.agentcage-backup",
    ]
