"""Load custom inspectors from `inspectors:` entries, by file path or module path.

Every failure here is a `PolicyError` at startup (the proxy refuses to start) or on
a reload (the running policy stays); failures while inspecting are the chain's
business (they block the request).

Plugin code run here (import, constructor, `configure`) is caught down to
BaseException: a SystemExit or KeyboardInterrupt raised by a plugin while the
proxy reloads on SIGHUP would otherwise stop the proxy. SIGINT and SIGTERM reach a
running proxy through asyncio's handlers, never as exceptions in this code; at
startup a KeyboardInterrupt landing in a plugin's import becomes a PolicyError,
which stops the proxy just the same.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agentcage.errors import PolicyError
from agentcage.policy.interface import Inspector

if TYPE_CHECKING:
    from agentcage.config.inspection import InspectorSpec


_HOOKS = ("inspect_request", "inspect_frame")


def load_inspector(spec: InspectorSpec, base_dir: Path | None = None) -> Inspector:
    """Import, instantiate and configure the inspector `spec` names."""
    where = f"inspector {spec.name!r}"
    if spec.path is not None:
        module, class_name = _from_path(spec.path, base_dir or Path.cwd(), where)
    else:
        assert spec.module is not None
        module, class_name = _from_module(spec.module, where)
    cls = _pick_class(module, class_name, where)
    try:
        instance = cls()
    except BaseException as exc:
        raise PolicyError(
            f"{where}: {cls.__name__}() failed: {type(exc).__name__}: {exc}",
            hint="an inspector class must be constructible without arguments; take "
            "settings in configure(config)",
        ) from exc
    configure = getattr(instance, "configure", None)
    if callable(configure):
        try:
            configure(dict(spec.config))
        except BaseException as exc:
            raise PolicyError(
                f"{where}: configure() rejected its config: {type(exc).__name__}: {exc}",
                hint=f"check the `config:` mapping of {spec.name!r} in your config file",
            ) from exc
    elif spec.config:
        raise PolicyError(
            f"{where}: has a `config:` mapping but {cls.__name__} has no configure() method",
            hint="remove `config:` or add `def configure(self, config: dict) -> None`",
        )
    try:
        # Findings and audit lines name the inspector as the config does.
        instance.name = spec.name
    except AttributeError:
        return _Named(spec.name, instance)
    return instance  # type: ignore[no-any-return]


class _Named:
    """Gives a name to an inspector whose own `name` cannot be set (e.g. slots, property)."""

    def __init__(self, name: str, inner: Any) -> None:
        self.name = name
        for hook in _HOOKS:
            if hasattr(inner, hook):
                setattr(self, hook, getattr(inner, hook))


def _from_path(raw: str, base_dir: Path, where: str) -> tuple[ModuleType, str | None]:
    text, class_name = raw, None
    head, sep, tail = raw.rpartition(":")
    if sep and head.endswith(".py") and tail.isidentifier():
        text, class_name = head, tail
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise PolicyError(
            f"{where}: {path} is not a file",
            hint="`path:` must name a Python file (relative paths start at the config's folder)",
        )
    # A unique module name per file, so two plugins both called `inspector.py` coexist.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"agentcage_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PolicyError(f"{where}: cannot load {path}", hint="is it a `.py` file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        raise PolicyError(
            f"{where}: importing {path} failed: {type(exc).__name__}: {exc}",
            hint="run `python <file>` to see the full error",
        ) from exc
    return module, class_name


def _from_module(raw: str, where: str) -> tuple[ModuleType, str | None]:
    module_name, _, class_name = raw.partition(":")
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:
        raise PolicyError(
            f"{where}: cannot import {module_name}: {type(exc).__name__}: {exc}",
            hint="install the package into the proxy's environment, or use `path:`",
        ) from exc
    return module, class_name or None


def _pick_class(module: ModuleType, class_name: str | None, where: str) -> type[Any]:
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            raise PolicyError(
                f"{where}: {module.__name__} has no class {class_name!r}",
                hint="check the name after `:`",
            )
        if not any(hasattr(cls, hook) for hook in _HOOKS):
            raise PolicyError(
                f"{where}: {class_name} has neither inspect_request nor inspect_frame",
                hint="see docs/inspectors.md for the inspector API",
            )
        return cls
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and obj.__module__ == module.__name__
        and any(hasattr(obj, hook) for hook in _HOOKS)
    ]
    if len(candidates) != 1:
        found = ", ".join(c.__name__ for c in candidates) or "none"
        raise PolicyError(
            f"{where}: expected one inspector class in {module.__name__}, found {found}",
            hint="name the class: `module: pkg.mod:ClassName` or `path: file.py:ClassName`",
        )
    return candidates[0]
