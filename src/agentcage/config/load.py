"""Read a config file into a `CageConfig`, with every problem located as `file:line`."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from agentcage.config.base import model_in
from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.errors import ConfigError

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


class InvalidConfig(ConfigError):
    """A config file with one or more located problems."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"invalid config ({count} problem{'s' if count != 1 else ''}):"
        super().__init__(
            "\n".join([head, *(f"  {p}" for p in self.problems)]),
            hint="see docs/configuration.md for every key, its type and its default",
        )


def load_config(
    path: Path | str, *, context: LoadContext | None = None, shown_as: Path | None = None
) -> CageConfig:
    """Load and validate `path`; raise `InvalidConfig` listing every located problem.

    `shown_as`: the path the same bytes are read at elsewhere (a sidecar's config, inside
    its container): messages name it and relative paths start from its directory.
    """
    path, text, ctx = _read(path, context, shown_as)
    json_config = _valid_json(text, ctx)
    if json_config is not None:
        return json_config[0]
    return _parse(text, str(path), context=ctx)[0]  # located problems, from YAML's lines


def check_config(
    path: Path | str, *, context: LoadContext | None = None, shown_as: Path | None = None
) -> tuple[CageConfig, list[Problem]]:
    """`load_config`, plus a located warning for each valid but risky setting."""
    path, text, ctx = _read(path, context, shown_as)
    json_config = _valid_json(text, ctx)
    if json_config is not None:
        return json_config[0], _warnings(*json_config, str(path))  # no lines: JSON keeps none
    config, tree = _parse(text, str(path), context=ctx)
    return config, _warnings(config, tree, str(path))


def _valid_json(text: str, context: LoadContext) -> tuple[CageConfig, dict[str, Any]] | None:
    """A valid JSON config and its tree, or None: YAML's reader then locates the problems.

    The sidecars' config files are JSON: read as such, `proxy run` and the DNS sidecar
    never load the YAML reader (3 MiB of each one's memory, in every cage).
    """
    tree = _json_tree(text)
    if tree is not None:
        with contextlib.suppress(ValidationError):
            return CageConfig.model_validate(tree, context=context), tree
    return None


def _read(
    path: Path | str, context: LoadContext | None, shown_as: Path | None = None
) -> tuple[Path, str, LoadContext]:
    """The file's text, the path messages name and the context it is validated in."""
    path = Path(path)
    shown = path if shown_as is None else shown_as  # the same bytes, read there
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{shown}: larger than 1 MiB; is this really a config file?")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no such file", hint="pass the path of your config YAML"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return shown, text, context or LoadContext(base_dir=shown.resolve().parent)


class _DuplicateKey(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _DuplicateKey  # YAML refuses them; so must this shortcut
    return found


def _json_tree(text: str) -> dict[str, Any] | None:
    """`text` as a JSON object, or None (not JSON, or a duplicate key: YAML then says why)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        tree = json.loads(text, object_pairs_hook=_unique)
    except ValueError:
        return None
    return tree if isinstance(tree, dict) else None


def policy_version(path: Path | str) -> str:
    """A short hash of the config file's bytes: the same file, the same version.

    The sidecars serve the version they loaded (their metrics); `cage status` compares it
    with the file deployed, so a change not yet reloaded shows. "" if it cannot be read.
    """
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    return hashlib.sha256(data).hexdigest()[:12]


def parse_config(text: str, filename: str, *, context: LoadContext) -> CageConfig:
    return _parse(text, filename, context=context)[0]


def _warnings(
    config: CageConfig, tree: CommentedMap | dict[str, Any], filename: str
) -> list[Problem]:
    found = []
    for index, rule in enumerate(config.secret_injection):
        for key, message in rule.warnings():
            loc: list[Any] = ["secret_injection", index, key]
            path = ".".join(map(str, loc))
            found.append(Problem(filename, _line_of(tree, loc), path, message))
    for index, port_rule in enumerate(config.network.ports):
        for key, message in port_rule.warnings():
            loc = ["network", "ports", index, key]
            found.append(Problem(filename, _line_of(tree, loc), ".".join(map(str, loc)), message))
    for key, message in config.domains.warnings():
        loc = ["domains", key]
        found.append(Problem(filename, _line_of(tree, loc), ".".join(loc), message))
    if config.rate_limit is not False:
        for key, message in config.rate_limit.warnings():
            loc = ["rate_limit", key]
            found.append(Problem(filename, _line_of(tree, loc), ".".join(loc), message))
    return found


def _parse(text: str, filename: str, *, context: LoadContext) -> tuple[CageConfig, CommentedMap]:
    tree = _parse_yaml(text, filename)
    if tree is None:
        raise InvalidConfig(
            [
                Problem(
                    filename, 1, "", "the file is empty; it needs at least `name:` and `container:`"
                )
            ]
        )
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(tree, CommentedMap):
        raise InvalidConfig([Problem(filename, 1, "", "the top level must be a mapping of keys")])
    try:
        return CageConfig.model_validate(_plain(tree), context=context), tree
    except ValidationError as exc:
        errors = _drop_failed_alternatives(exc.errors())
        problems = sorted((_problem(filename, tree, e) for e in errors), key=lambda p: p.line or 0)
        raise InvalidConfig(problems) from None


def _drop_failed_alternatives(errors: list[Any]) -> list[Any]:
    """For `section: {...} | false`, report why the mapping failed, not that it isn't `false`."""
    model_branches = {
        tuple(e["loc"][:i])
        for e in errors
        for i, part in enumerate(e["loc"])
        if isinstance(part, str) and part[:1].isupper()
    }
    return [
        e
        for e in errors
        if not (
            e["loc"]
            and str(e["loc"][-1]).startswith("literal[")
            and tuple(e["loc"][:-1]) in model_branches
        )
    ]


def _parse_yaml(text: str, filename: str) -> Any:
    # ruamel is imported only to read YAML: `cage list`, `status` and `destroy` never do,
    # and importing it costs them about 0.2 s here.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(exc.problem or exc.context or "").split())
        raise InvalidConfig(
            [Problem(filename, line, "", f"YAML syntax error: {problem}")]
        ) from None
    except Exception as exc:  # ruamel raises a few unmarked error types
        raise InvalidConfig([Problem(filename, None, "", f"YAML error: {exc}")]) from None


def _plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain dict/list/str so pydantic's strict mode accepts them."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)


def _problem(filename: str, tree: CommentedMap, err: Any) -> Problem:
    loc = [part for part in err["loc"] if not _is_union_tag(part)]
    line = _line_of(tree, loc)
    message = _message(err, loc)
    return Problem(filename, line, ".".join(str(p) for p in loc), message)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member's name to `loc` (e.g. 'EntropyConfig', 'literal[False]').
    return isinstance(part, str) and (part[:1].isupper() or part.startswith(("literal[", "list[")))


def _line_of(tree: Any, loc: list[Any]) -> int | None:
    if not hasattr(tree, "lc"):
        return None  # a plain JSON tree: no line marks, and no reason to load ruamel
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    node, line = tree, 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _message(err: Any, loc: list[Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        listed = f" (known keys: {', '.join(sorted(known))})" if known and not close else ""
        return f"unknown key{hint}{listed}"
    if kind == "missing":
        return "is required"
    if kind in ("value_error", "assertion_error"):
        return str(msg).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return f"{err.get('input')!r} does not match {pattern}"
    if kind == "literal_error":
        return f"{err.get('input')!r} is not allowed: {msg.removeprefix('Input should be ')}"
    return f"{msg} (got {_short(err.get('input'))})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known_keys(loc: list[Any]) -> list[str]:
    """Field names (by YAML spelling) of the model found at `loc`."""
    model: Any = CageConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = model.model_fields if _is_model(model) else {}
        field = next((f for n, f in fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        model = model_in(field.annotation)
        if model is None:
            return []
    if not _is_model(model):
        return []
    keys = [f.alias or n for n, f in model.model_fields.items()]
    if model.__name__ == "DomainsConfig":
        keys += ["allow", "block"]
    return keys


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)
