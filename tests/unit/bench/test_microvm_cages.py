"""bench/microvm/cages.py's pure parts: the microVM cage's config and the ratios."""

from __future__ import annotations

from pathlib import Path

from bench.cages.run import CONFIG
from bench.microvm.cages import VM_SETTINGS, ratios

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


def test_ratios_are_the_microvms_median_over_the_containers() -> None:
    text = ratios(
        {
            "container": {"create": [2.0, 3.0, 4.0], "PSS of the cage MiB": [80.0]},
            "microvm": {"create": [30.0, 31.0, 90.0], "PSS of the cage MiB": [800.0]},
        }
    )
    assert "  create: 10.3x" in text and "  PSS of the cage MiB: 10.0x" in text
