"""The host container image recipe: content-hashed, built from trixie packages, no registry."""

from __future__ import annotations

from pathlib import Path

from agentcage.cage.host_image import HOST_PACKAGES, HostImageRecipe, host_image
from agentcage.cage.images import ImageBuilder
from agentcage.errors import PodmanError
from tests.unit.cage.fakes import RecordingRunner


def test_the_ref_hashes_the_machine_limits() -> None:
    a, b = HostImageRecipe(20000, 32768), HostImageRecipe(1048576, 32768)
    assert a.ref() == HostImageRecipe(20000, 32768).ref()
    assert a.ref() != b.ref() and a.ref().startswith("localhost/agentcage-host:")
    conf = a.files()["/etc/containers/containers.conf"]
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' in conf
    assert 'cgroup_manager = "cgroupfs"' in conf
    storage = a.files()["/etc/containers/storage.conf"]
    assert 'additionalimagestores = ["/var/lib/shared"]' in storage


def test_limits_stay_within_the_hard_ones() -> None:
    recipe = HostImageRecipe.for_this_machine()
    assert 0 < recipe.nproc <= 32768 and recipe.nofile > 0


def test_a_missing_image_is_built_with_mmdebstrap_and_imported(tmp_path: Path) -> None:
    recipe = HostImageRecipe(20000, 32768)
    runner = RecordingRunner(answers={("podman", "image", "exists"): PodmanError("no")})
    ref = host_image(ImageBuilder(runner), recipe)
    assert ref == recipe.ref()
    (strap,) = runner.commands("mmdebstrap")
    assert f"--include={','.join(HOST_PACKAGES)}" in strap
    assert "podman" in HOST_PACKAGES and "systemd" in HOST_PACKAGES
    assert strap[-2] == "trixie"
    uploads = [arg for arg in strap if arg.startswith("--customize-hook=upload ")]
    assert sorted(arg.split()[-1] for arg in uploads) == sorted(recipe.files())
    assert any("systemctl mask" in arg and "systemd-logind.service" in arg for arg in strap)
    (imported,) = runner.commands("podman", "import")
    assert '--change=CMD ["/usr/lib/systemd/systemd"]' in imported
    assert "--change=STOPSIGNAL SIGRTMIN+3" in imported and imported[-1] == ref


def test_an_existing_image_is_not_rebuilt() -> None:
    runner = RecordingRunner()
    host_image(ImageBuilder(runner), HostImageRecipe(20000, 32768))
    assert not runner.commands("mmdebstrap")
