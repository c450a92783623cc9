"""bench/microvm/cages.py's pure part: the microVM cage's config."""

from __future__ import annotations

from pathlib import Path

from bench.cages.run import CONFIG
from bench.microvm.cages import MODES, VM_SETTINGS

from agentcage.config import load_config


def test_the_microvm_cage_is_the_container_cage_with_isolation_firecracker(
    tmp_path: Path,
) -> None:
    base = CONFIG.format(name="benchm0", internet="10.250.0.10", subnet="10.250.0.0/24")
    path = tmp_path / "cage.yaml"
    path.write_text(base + VM_SETTINGS.format(mem=768))
    config = load_config(path)
    assert config.isolation == "firecracker"
    assert (config.firecracker.vcpus, config.firecracker.mem_mb) == (1, 768)


def test_the_container_mode_comes_first_so_the_ratio_is_microvm_over_container() -> None:
    assert MODES == ("container", "microvm")
