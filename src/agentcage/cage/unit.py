"""Systemd/quadlet unit files built from typed data, never from string templates.

A `UnitFile` is ordered sections of ordered (key, value) entries; keys may repeat.
Rendering follows the rules Podman's own unit-file writer uses, so that no value can
change the file's structure:

* a newline, carriage return, NUL or other control character in any value is refused
  (it would start a new key or section);
* `%` becomes `%%` (systemd specifiers), and `$` becomes `$$` wherever the value ends up
  on a command line systemd expands (every quadlet key does, through `ExecStart=`);
* word-list keys (`Exec`, `Environment`, `PodmanArgs`, `Label`, ...) take a tuple of
  words; a word holding whitespace, quotes or backslashes is double-quoted with C escapes,
  so `Label=a b` can never split into two labels, and a lone `;` is quoted too (unquoted,
  it would end one `ExecStart=` command and start another).

Only the renderers themselves write live specifiers (`%t/%N.cid`), as `Specifiers` words
made from fixed text; every other `%` is escaped.

`parse` reads a rendered file back into the same data; tests use it for round trips.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from agentcage.errors import AgentcageError

Section = Literal["Unit", "Service", "Install", "Container", "Network", "Volume"]
SECTIONS: tuple[Section, ...] = ("Unit", "Container", "Network", "Volume", "Service", "Install")

# Keys whose value is a list of words (quoted one by one).
WORD_KEYS = frozenset(
    {
        "Exec",
        "ExecStartPre",
        "ExecStartPost",
        "ExecStop",
        "ExecReload",
        "Environment",
        "PodmanArgs",
        "Label",
        "GlobalArgs",
        "ExecStart",
        "ExecStopPost",
        "RequiresMountsFor",
    }
)
# Sections and keys whose values systemd expands `$VAR`/`${VAR}` in.
_DOLLAR_SECTIONS = frozenset({"Container", "Network", "Volume"})
_DOLLAR_KEYS = frozenset(
    {"ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload"}
)

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# C0/C1 controls and Unicode line separators: some readers split lines on them too.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\]")

Value = str | tuple[str, ...]


class RenderError(AgentcageError):
    """A value cannot be written into a unit file safely."""


_SPECIFIER = re.compile(r"%(.)")
_LIVE_SPECIFIERS = frozenset("tnN")  # runtime dir, unit name, unit name without suffix


class Specifiers(str):
    """Fixed text whose systemd specifiers stay live: `%t/%N.cid`, `PODMAN_SYSTEMD_UNIT=%n`.

    Renderers make these from constants, never from config values, which are plain `str`
    and always have their `%` escaped.
    """

    def __new__(cls, text: str) -> Specifiers:
        for found in _SPECIFIER.findall(text):
            if found not in _LIVE_SPECIFIERS:
                raise RenderError(f"{text!r}: %{found} is not a specifier renderers may write")
        return super().__new__(cls, text)


@dataclass(frozen=True)
class Entry:
    key: str
    value: Value


@dataclass
class UnitFile:
    """One unit file: `{section: [Entry, ...]}` in insertion order."""

    sections: dict[Section, list[Entry]] = field(default_factory=dict)

    def add(self, section: Section, key: str, value: Value | int | bool) -> UnitFile:
        """Append an entry; raises RenderError for anything that cannot be written safely."""
        if not _KEY.match(key):
            raise RenderError(f"{key!r} is not a unit-file key")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        if (key in WORD_KEYS) != isinstance(value, tuple):
            kind = "a tuple of words" if key in WORD_KEYS else "a single string"
            raise RenderError(f"{section}.{key} takes {kind}")
        for text in value if isinstance(value, tuple) else (value,):
            if _CONTROL.search(text):
                raise RenderError(
                    f"{section}.{key}: value {text!r} holds a control character (newline, tab, "
                    "NUL...), which would inject unit-file lines; remove it"
                )
        if isinstance(value, str):
            render_value(section, key, value)  # refuse unwritable plain values now
        self.sections.setdefault(section, []).append(Entry(key, value))
        return self

    def extend(self, section: Section, key: str, values: Iterable[str]) -> UnitFile:
        for value in values:
            self.add(section, key, value)
        return self

    def get(self, section: Section, key: str) -> list[Value]:
        return [e.value for e in self.sections.get(section, []) if e.key == key]

    def render(self) -> str:
        blocks = []
        for section in SECTIONS:
            entries = self.sections.get(section)
            if not entries:
                continue
            lines = [f"[{section}]"]
            lines += [f"{e.key}={render_value(section, e.key, e.value)}" for e in entries]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) + "\n"


def render_value(section: str, key: str, value: Value) -> str:
    dollar = section in _DOLLAR_SECTIONS or key in _DOLLAR_KEYS
    if isinstance(value, tuple):
        return " ".join(_quote_word(_specifiers(word, dollar)) for word in value)
    text = _specifiers(value, dollar)
    # Plain values are read raw: edge whitespace would be trimmed and a trailing
    # backslash would continue the line into the next key, so neither can be written.
    if text.endswith("\\") or text != text.strip():
        raise RenderError(
            f"{section}.{key}: {value!r} has edge whitespace or a trailing backslash, "
            "which a unit file cannot hold as a plain value"
        )
    return text


def _specifiers(text: str, dollar: bool) -> str:
    if not isinstance(text, Specifiers):
        text = text.replace("%", "%%")
    return text.replace("$", "$$") if dollar else text


def _quote_word(word: str) -> str:
    if word and word != ";" and not _NEEDS_QUOTES.search(word):
        return word
    out = ['"']
    for ch in word:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --- reading back (tests, and `cage update` diffs) -------------------------------------


def parse(text: str) -> UnitFile:
    """Parse what `render` wrote: sections, repeated keys, quoted words, escapes."""
    unit = UnitFile()
    section: Section | None = None
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            name = line.strip("[]")
            if name not in SECTIONS:
                raise RenderError(f"line {number}: unknown section [{name}]")
            section = next(s for s in SECTIONS if s == name)
            continue
        if section is None or "=" not in line:
            raise RenderError(f"line {number}: {line!r} is not `key=value` inside a section")
        key, _, raw = line.partition("=")
        dollar = section in _DOLLAR_SECTIONS or key in _DOLLAR_KEYS
        if key in WORD_KEYS:
            words = tuple(_unspecify(w, dollar) for w in split_words(raw))
            unit.sections.setdefault(section, []).append(Entry(key, words))
        else:
            unit.sections.setdefault(section, []).append(Entry(key, _unspecify(raw, dollar)))
    return unit


def _unspecify(text: str, dollar: bool) -> str:
    if dollar:
        text = text.replace("$$", "\x00")
    text = text.replace("%%", "%")
    return text.replace("\x00", "$")


def split_words(raw: str) -> list[str]:
    """Split a word list the way systemd does: whitespace-separated, `"..."` quoted."""
    words: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        if raw[i].isspace():
            i += 1
            continue
        if raw[i] == '"':
            i += 1
            buf = []
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(raw[i])
                i += 1
            if i >= n:
                raise RenderError(f"unterminated quote in {raw!r}")
            i += 1
            words.append("".join(buf))
        else:
            start = i
            while i < n and not raw[i].isspace():
                i += 1
            words.append(raw[start:i])
    return words
