"""What validation needs from outside the file: its directory and the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")


@dataclass(frozen=True)
class LoadContext:
    base_dir: Path = field(default_factory=Path.cwd)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Off for configs copied into the state store, whose host paths were checked
    # when they were first validated and may sit on another machine's layout.
    check_paths: bool = True


def context_of(info: ValidationInfo) -> LoadContext:
    ctx: Any = info.context
    if isinstance(ctx, LoadContext):
        return ctx
    return LoadContext()


def expand_vars(value: str, environ: Mapping[str, str]) -> str:
    """Expand `${VAR}`; `$$` is a literal `$`. An unset variable is an error, not ''."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in environ:
            raise ValueError(f"uses ${{{name}}}, which is not set in the environment; export it")
        return environ[name]

    return _VAR.sub(substitute, value)
