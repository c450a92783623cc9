"""Build the policy engine's C accelerator (src/agentcage/policy/_native.c) into the wheel.

A few byte passes dominate inspecting a large body; in C they are 3-10x faster (see
the module's comment and bench/policy.py). The code is one file with no
dependencies, so it is compiled here with the interpreter's own compiler settings
rather than through a second build system. Editable installs get the module next
to its source.

Without a C compiler the build stops and says how to fix it: the proxy still works
on the pure-Python fallback, but slower, so that has to be asked for explicitly
with AGENTCAGE_NO_NATIVE=1.

Run as a script (`python3 hatch_build.py SOURCE TARGET`) it compiles the module alone:
the runtime image's native stage does that for a wheel built on another platform (a
Mac), where hatchling is not installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script, or imported by a test: only compile_module is used
    BuildHookInterface = object  # type: ignore[assignment,misc]

SOURCE = Path("src/agentcage/policy/_native.c")
MODULE = "agentcage/policy/_native"
# No -Werror: a newer compiler's new warning must not break a user's install.
FLAGS = ["-O2", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter"]
# How CPython's configure links extension modules where its LDSHARED says nothing: macOS
# loads them as bundles whose Python symbols resolve against the interpreter at import.
DEFAULT_LINK = {"darwin": ["-bundle", "-undefined", "dynamic_lookup"]}


class NativeBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("AGENTCAGE_NO_NATIVE") == "1":
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        root = Path(self.root)
        if version == "editable":
            compile_module(root / SOURCE, root / "src" / (MODULE + suffix))
        else:
            work = Path(tempfile.mkdtemp(prefix="agentcage-native-"))
            built = work / ("_native" + suffix)
            compile_module(root / SOURCE, built)
            build_data["force_include"][str(built)] = MODULE + suffix
        build_data["pure_python"] = False
        build_data["infer_tag"] = True


def link_flags(ldshared: str | None, platform: str) -> list[str]:
    """The flags this Python links extension modules with: LDSHARED after its compiler
    (what setuptools' build_ext uses, so `-bundle -undefined dynamic_lookup` on macOS),
    else CPython's default for `platform` (a sys.platform value)."""
    words = shlex.split(ldshared or "")
    flags = next((words[i:] for i, word in enumerate(words) if word.startswith("-")), [])
    if "-shared" in flags or "-bundle" in flags:
        return flags
    return DEFAULT_LINK.get(platform, ["-shared"]) + flags


def compile_command(
    source: Path,
    output: Path,
    *,
    compiler: list[str],
    include: str,
    ldshared: str | None,
    platform: str,
) -> list[str]:
    """One compiler call that compiles and links `source` into the module `output`."""
    link = link_flags(ldshared, platform)
    return [*compiler, *FLAGS, f"-I{include}", str(source), *link, "-lm", "-o", str(output)]


def compile_module(source: Path, target: Path) -> None:
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    if shutil.which(compiler[0]) is None or not (Path(include) / "Python.h").exists():
        raise RuntimeError(
            f"agentcage: building {source.name} needs a C compiler ({compiler[0]}) and "
            f"Python headers ({include}/Python.h); on Debian: apt install gcc libc6-dev "
            "python3-dev (./scripts/bootstrap does this). To build the slower pure-Python "
            "version instead, set AGENTCAGE_NO_NATIVE=1."
        )
    partial = target.with_name(target.name + ".partial")
    command = compile_command(
        source,
        partial,
        compiler=compiler,
        include=include,
        ldshared=sysconfig.get_config_var("LDSHARED"),
        platform=sys.platform,
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"agentcage: compiling {source.name} failed:\n{result.stderr}")
    partial.replace(target)  # atomic: a running interpreter never sees half a module


if __name__ == "__main__":
    compile_module(Path(sys.argv[1]), Path(sys.argv[2]))
