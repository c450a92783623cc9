"""Build the policy engine's C accelerator (src/agentcage/policy/_native.c) into the wheel.

A few byte passes dominate inspecting a large body; in C they are 3-10x faster (see
the module's comment and bench/policy.py). The code is one file with no
dependencies, so it is compiled here with the interpreter's own compiler settings
rather than through a second build system. Editable installs get the module next
to its source.

Without a C compiler the build stops and says how to fix it: the proxy still works
on the pure-Python fallback, but slower, so that has to be asked for explicitly
with AGENTCAGE_NO_NATIVE=1.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/agentcage/policy/_native.c")
MODULE = "agentcage/policy/_native"
# No -Werror: a newer compiler's new warning must not break a user's install.
FLAGS = ["-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wno-unused-parameter"]


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
    command = [*compiler, *FLAGS, f"-I{include}", str(source), "-lm", "-o", str(partial)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"agentcage: compiling {source.name} failed:\n{result.stderr}")
    partial.replace(target)  # atomic: a running interpreter never sees half a module
