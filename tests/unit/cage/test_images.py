"""Image builds: content-addressed tags, cached builds skipped, progress shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.cage import images
from agentcage.cage.image_inputs import digest
from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import Completed, SubprocessRunner
from agentcage.config import load_config
from agentcage.errors import PodmanError
from tests.unit.cage.fakes import RecordingRunner, ok


def test_everything_cached_runs_no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both images present: one `podman image inspect` of the two answers for both.
    runner = RecordingRunner(answers={("podman", "image", "inspect"): ok("sha-p\nsha-d\n")})
    built = ImageBuilder(runner).sidecar_images("debian")
    assert built.proxy.startswith("localhost/agentcage-proxy:")
    assert built.dns.startswith("localhost/agentcage-dns:")
    (call,) = runner.calls
    assert call[:3] == ("podman", "image", "inspect") and call[-2:] == (built.proxy, built.dns)


def test_missing_images_are_built_with_progress(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = RecordingRunner(answers={("podman", "image", "exists"): Completed((), 1, "", "")})
    lines: list[str] = []
    builder = ImageBuilder(runner, progress=lines.append)
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "requirements.lock").write_text("")
    monkeypatch.setattr(builder, "wheelhouse", lambda root: wheelhouse)
    built = builder.sidecar_images("debian")
    builds = runner.commands("podman", "build")
    assert len(builds) == 3
    runtime = next(b for b in builds if "BASE=" in " ".join(b))
    assert "--no-cache" in runtime  # the wheel arrives through a bind mount
    assert any(b[b.index("-t") + 1] == built.proxy for b in builds)
    assert runner.commands("mmdebstrap")
    assert any(line.startswith("  built localhost/agentcage-runtime:") for line in lines)


def test_tags_follow_content() -> None:
    assert digest("a", "b") != digest("ab")
    assert digest("x") == digest("x")


def test_debian_agent_image_is_built_on_demand(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"name: x\ncontainer:\n  image: {images.AGENT_DEBIAN_IMAGE}\n")
    runner = RecordingRunner(answers={("podman", "image", "exists"): Completed((), 1, "", "")})
    ref = ImageBuilder(runner).agent_image(load_config(config_path), tmp_path, "debian")
    assert ref == images.AGENT_DEBIAN_IMAGE
    (strap,) = runner.commands("mmdebstrap")
    assert "--include=ca-certificates,curl,dnsutils,python3" in strap
    assert runner.commands("podman", "tag")[-1][-1] == images.AGENT_DEBIAN_IMAGE


def test_debian_agent_image_already_tagged_takes_one_question(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"name: x\ncontainer:\n  image: {images.AGENT_DEBIAN_IMAGE}\n")
    runner = RecordingRunner(answers={("podman", "image", "inspect"): ok("sha1\nsha1\n")})
    ImageBuilder(runner).agent_image(load_config(config_path), tmp_path, "debian")
    assert [c[:3] for c in runner.calls] == [("podman", "image", "inspect")]


def test_registry_agent_image_is_pulled_when_missing(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text("name: x\ncontainer:\n  image: docker.io/library/debian:12\n")
    runner = RecordingRunner(answers={("podman", "image", "exists"): Completed((), 1, "", "")})
    ImageBuilder(runner).agent_image(load_config(config_path), tmp_path, "registry")
    assert runner.commands("podman", "pull")


def test_containerfile_agent_is_built_and_tagged_by_its_context(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM localhost/base:1\nCOPY agent.py /app/\n")
    (tmp_path / "agent.py").write_text("print('hi')\n")
    config_path = tmp_path / "c.yaml"
    config_path.write_text("name: cf\ncontainer:\n  containerfile: Containerfile\n")
    config = load_config(config_path)
    missing = {("podman", "image", "exists"): Completed((), 1, "", "")}
    runner = RecordingRunner(answers=dict(missing))
    ref = ImageBuilder(runner).agent_image(config, tmp_path, "debian")
    assert ref.startswith("localhost/agentcage-cf-agent:")
    (build,) = runner.commands("podman", "build")
    assert build[build.index("-f") + 1] == str(tmp_path / "Containerfile")
    assert build[-1] == str(tmp_path)
    (tmp_path / "agent.py").write_text("print('changed')\n")
    again = ImageBuilder(RecordingRunner(answers=dict(missing))).agent_image(
        config, tmp_path, "debian"
    )
    assert again != ref  # a changed build context is a new image


def test_missing_containerfile_is_a_clear_error(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text("name: cf\ncontainer:\n  containerfile: nope/Containerfile\n")
    with pytest.raises(PodmanError, match="does not exist"):
        ImageBuilder(RecordingRunner()).agent_image(load_config(config_path), tmp_path, "debian")


PINNED = "127.0.0.1:5000/agentcage/base:bookworm@sha256:" + "ab" * 32
MISSING = {("podman", "image", "exists"): Completed((), 1, "", "")}


def test_a_pull_names_the_digest_and_shows_its_progress() -> None:
    said = "Trying to pull x...\nCopying blob sha256:aa\nWriting manifest to image destination\n"
    runner = RecordingRunner(answers={**MISSING, ("podman", "pull"): Completed((), 0, said, "")})
    lines: list[str] = []
    assert ImageBuilder(runner, progress=lines.append).base(PINNED) == PINNED
    assert runner.commands("podman", "pull") == [("podman", "pull", PINNED)]  # not --quiet
    assert lines == [f"  pulling {PINNED}", *(f"    {line}" for line in said.splitlines())]


def test_a_failed_base_pull_says_what_failed_and_suggests_debian() -> None:
    error = "Error: initializing source docker://x: lookup registry-1.docker.io: no such host"
    answers = {**MISSING, ("podman", "pull"): Completed((), 125, "Trying to pull x...\n", error)}
    with pytest.raises(PodmanError) as raised:
        ImageBuilder(RecordingRunner(answers=answers)).sidecar_images("registry")
    assert raised.value.message == f"pulling {images.REGISTRY_BASE} failed: {error}"
    assert raised.value.hint and "`--base debian`" in raised.value.hint


def test_a_failed_agent_pull_points_at_the_image_name(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text("name: x\ncontainer:\n  image: docker.io/library/nosuch:1\n")
    answers = {**MISSING, ("podman", "pull"): Completed((), 125, "", "Error: manifest unknown")}
    with pytest.raises(PodmanError, match="manifest unknown") as raised:
        ImageBuilder(RecordingRunner(answers=answers)).agent_image(
            load_config(config_path), tmp_path, "registry"
        )
    assert raised.value.hint and "container.image" in raised.value.hint


class _Downloads(RecordingRunner):
    """`pip download` leaves one wheel where it was told to."""

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if "download" in argv:
            target = Path(argv[argv.index("-d") + 1])
            target.mkdir(parents=True)
            (target / "click-8.1.7-py3-none-any.whl").write_bytes(b"wheel")
        return Completed(argv, 0, "click==8.1.7\n", "")


def test_the_wheelhouse_needs_only_uv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """bootstrap puts `uv` on the README's PATH, not `uvx`."""
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path)
    runner = _Downloads(answers={("podman", "info"): ok("amd64\n")})
    house = ImageBuilder(runner).wheelhouse(tmp_path / "project")
    # Podman says which platform the images are for; everything else is uv.
    assert {argv[0] for argv in runner.calls} == {"podman", "uv"}
    assert "click==8.1.7 --hash=sha256:" in (house / "requirements.lock").read_text()


def test_a_missing_uv_says_where_bootstrap_puts_it(tmp_path: Path) -> None:
    with pytest.raises(PodmanError) as caught:
        SubprocessRunner(env={"PATH": str(tmp_path)}).run(["uv", "--version"])
    assert caught.value.message == "uv: command not found"
    assert ".venv/bin" in str(caught.value.hint) and "setup-host" not in str(caught.value.hint)


def test_a_cage_whose_images_all_exist_costs_one_question(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"name: x\ncontainer:\n  image: {images.AGENT_DEBIAN_IMAGE}\n")
    # proxy, dns, the agent's alias and the content-tagged Debian image it names
    runner = RecordingRunner(answers={("podman", "image", "inspect"): ok("p\nd\na\na\n")})
    builder = ImageBuilder(runner)
    sidecars, agent = builder.cage_images(load_config(config_path), tmp_path, "debian")
    (call,) = runner.calls
    assert call[:3] == ("podman", "image", "inspect")
    assert call[-4:-2] == (sidecars.proxy, sidecars.dns) and call[-2] == agent
    assert not builder.built_something


def test_a_cage_with_a_missing_image_asks_each_on_its_own(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text("name: x\ncontainer:\n  image: docker.io/library/debian:12\n")
    runner = RecordingRunner(
        answers={
            ("podman", "image", "inspect"): Completed((), 125, "p\nd\n", "no such image"),
            ("podman", "image", "exists", "docker.io/library/debian:12"): Completed((), 1, "", ""),
        }
    )
    ImageBuilder(runner).cage_images(load_config(config_path), tmp_path, "registry")
    assert runner.commands("podman", "pull")  # the agent's image
    assert not runner.commands("podman", "build")  # the sidecars exist
