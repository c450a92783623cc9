"""hatch_build.py links the C accelerator the way this platform's Python links extensions."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]
# LDSHARED as python.org's macOS installer and Debian 12's python3.11 record it.
MACOS_LDSHARED = "clang -bundle -undefined dynamic_lookup -arch arm64 -arch x86_64 -g"
DEBIAN_LDSHARED = "x86_64-linux-gnu-gcc -shared -Wl,-O1 -Wl,-Bsymbolic-functions -g -fwrapv -O2"


def _hatch_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(ldshared: str | None, platform: str) -> list[str]:
    command: list[str] = _hatch_build().compile_command(
        Path("_native.c"),
        Path("_native.so"),
        compiler=["cc"],
        include="/inc",
        ldshared=ldshared,
        platform=platform,
    )
    return command


def test_on_macos_the_module_is_a_bundle_resolving_python_at_import() -> None:
    for ldshared in (MACOS_LDSHARED, None, "clang"):
        command = _render(ldshared, "darwin")
        assert "-shared" not in command
        at = command.index("-undefined")
        assert command[at - 1 : at + 2] == ["-bundle", "-undefined", "dynamic_lookup"]
        assert command[0] == "cc" and command[-2:] == ["-o", "_native.so"]


def test_on_linux_the_module_is_a_shared_object() -> None:
    assert "-undefined" not in _render(DEBIAN_LDSHARED, "linux")
    assert "-shared" in _render(DEBIAN_LDSHARED, "linux")
    assert _render(None, "linux")[-4:] == ["-shared", "-lm", "-o", "_native.so"]


def test_run_as_a_script_it_builds_an_importable_module(tmp_path: Path) -> None:
    # The runtime image's native stage runs it so, without hatchling.
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = tmp_path / f"_native{suffix}"
    source = ROOT / "src/agentcage/policy/_native.c"
    subprocess.run([sys.executable, ROOT / "hatch_build.py", source, built], check=True)
    load = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('_native', {str(built)!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "print(sorted(n for n in dir(module) if not n.startswith('_'))[:1])"
    )
    shown = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() not in ("", "[]")
