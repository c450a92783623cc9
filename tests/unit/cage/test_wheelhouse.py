"""The wheelhouse is fetched for the images' platform, whatever machine runs the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage import images
from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import Completed
from agentcage.cage.wheelhouse import NATIVE, ImagePlatform
from tests.unit.cage.fakes import RecordingRunner, ok

LINUX_X86 = ("linux", "x86_64")
MAC_ARM = ("darwin", "arm64")  # sys.platform and platform.machine() on Apple silicon


class _PipDownloads(RecordingRunner):
    """Podman builds on `arch`; `pip download` leaves a wheel and an sdist."""

    def __init__(self, arch: str) -> None:
        super().__init__(answers={("podman", "info"): ok(f"{arch}\n")})

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if "download" in argv:
            target = Path(argv[argv.index("-d") + 1])
            target.mkdir(parents=True)
            (target / "click-8.1.7-py3-none-any.whl").write_bytes(b"wheel")
            (target / "pyperclip-1.9.0.tar.gz").write_bytes(b"sdist")
        if "wheel" in argv:
            out = Path(argv[argv.index("-w") + 1])
            (out / "pyperclip-1.9.0-py3-none-any.whl").write_bytes(b"built")
        return Completed(argv, 0, "click==8.1.7\n", "")


def _wheelhouse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, machine: tuple[str, str], arch: str
) -> tuple[Path, _PipDownloads]:
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path)
    runner = _PipDownloads(arch)
    return ImageBuilder(runner, machine=machine).wheelhouse(tmp_path / "project"), runner


def test_manylinux_tags_span_debian_12s_glibc_down_to_the_oldest() -> None:
    x86 = ImagePlatform("x86_64").manylinux_tags()
    assert x86[0] == "manylinux_2_36_x86_64"
    for tag in ("manylinux_2_34_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"):
        assert tag in x86
    assert "manylinux_2_37_x86_64" not in x86  # a newer glibc than the image's
    arm = ImagePlatform("aarch64").manylinux_tags()
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert all(tag.endswith("_aarch64") for tag in arm)


def test_podman_and_macos_arch_names_become_wheel_tag_names() -> None:
    assert ImagePlatform.from_podman("amd64\n") == ImagePlatform("x86_64")
    assert ImagePlatform.from_podman("arm64") == ImagePlatform("aarch64")
    assert ImagePlatform("x86_64").built_by(*LINUX_X86)
    assert ImagePlatform("aarch64").built_by("linux", "aarch64")
    assert not ImagePlatform("aarch64").built_by(*MAC_ARM)
    assert not ImagePlatform("aarch64").built_by(*LINUX_X86)


def test_a_mac_fetches_linux_wheels_for_its_podman_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    house, runner = _wheelhouse(monkeypatch, tmp_path, MAC_ARM, "arm64")
    (download,) = runner.commands("uv", "tool", "run", "pip", "download")
    for option in (
        "--platform=manylinux_2_36_aarch64",
        "--platform=manylinux2014_aarch64",
        "--python-version=3.11",
        "--implementation=cp",
        "--abi=cp311",
        "--require-hashes",
        "--no-deps",
    ):
        assert option in download
    assert not any("x86_64" in word or "macosx" in word for word in download)
    # The sdist is not built on the Mac: the native stage builds it on Linux.
    assert not [argv for argv in runner.calls if "wheel" in argv]
    assert (house / NATIVE / "pyperclip-1.9.0.tar.gz").is_file()
    assert (house / "requirements.lock").read_text().startswith("click==8.1.7 --hash=sha256:")


def test_a_linux_host_of_the_same_arch_builds_the_sdist_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    house, runner = _wheelhouse(monkeypatch, tmp_path, LINUX_X86, "amd64")
    (download,) = runner.commands("uv", "tool", "run", "pip", "download")
    assert "--platform=manylinux_2_17_x86_64" in download
    (build,) = [argv for argv in runner.calls if "wheel" in argv]
    assert build[:6] == ("uv", "tool", "run", "--python", "3.11", "pip")
    assert not list((house / NATIVE).iterdir())
    assert "pyperclip==1.9.0 --hash=sha256:" in (house / "requirements.lock").read_text()


def test_the_wheelhouse_is_named_by_the_images_platform_not_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_mac, _ = _wheelhouse(monkeypatch, tmp_path / "mac", MAC_ARM, "arm64")
    on_arm_linux, _ = _wheelhouse(monkeypatch, tmp_path / "arm", ("linux", "aarch64"), "arm64")
    on_x86, _ = _wheelhouse(monkeypatch, tmp_path / "x86", LINUX_X86, "amd64")
    assert on_mac.name == on_arm_linux.name != on_x86.name


def test_on_a_mac_the_native_stage_gets_the_accelerator_to_compile(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {}

    class Builds(RecordingRunner):
        def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
            if argv[:2] == ("podman", "build"):
                native = Path(argv[-1]) / "wheelhouse" / NATIVE
                seen["native"] = sorted(p.name for p in native.iterdir())
            return Completed(argv, 0, "", "")

    for machine, expected in ((MAC_ARM, ["_native.c", "hatch_build.py"]), (LINUX_X86, [])):
        runner = Builds(
            answers={("podman", "info"): ok("amd64" if machine == LINUX_X86 else "arm64")}
        )
        house = tmp_path / machine[0]
        house.mkdir()
        (house / "requirements.lock").write_text("")
        ImageBuilder(runner, machine=machine).build_runtime(
            images.source_root(), "base", house, "localhost/agentcage-runtime:x"
        )
        (uv_build,) = [argv for argv in runner.calls if "build" in argv and "uv" in argv]
        pure = uv_build[:2] == ("env", "AGENTCAGE_NO_NATIVE=1")
        assert pure == (machine == MAC_ARM)
        assert seen["native"] == expected
