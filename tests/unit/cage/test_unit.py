"""The unit-file renderer: escaping, refusal of injected lines, and a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcage.cage.unit import RenderError, Specifiers, UnitFile, parse, split_words

HOSTILE = [
    "plain",
    "with space",
    'quote " inside',
    "back\\slash",
    "trailing backslash\\",
    "100% and %h specifier",
    "$HOME and ${PATH} and $$",
    "'single' quotes",
    "",
    " leading and trailing ",
    "key=value=more",
    "[Service]",
    "ExecStart=/bin/sh -c evil",
]


def test_renders_sections_in_order_with_repeated_keys() -> None:
    unit = UnitFile()
    unit.add("Install", "WantedBy", "default.target")
    unit.add("Container", "Image", "localhost/x:1")
    unit.add("Unit", "Requires", "a.service").add("Unit", "Requires", "b.service")
    assert unit.render() == (
        "[Unit]\nRequires=a.service\nRequires=b.service\n\n"
        "[Container]\nImage=localhost/x:1\n\n"
        "[Install]\nWantedBy=default.target\n"
    )


@pytest.mark.parametrize(
    "bad", ["a\nb", "a\rb", "a\x00b", "x\n[Service]\nExecStart=/bin/sh", "a\x85b", "a\u2028b"]
)
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(RenderError, match="control character"):
        UnitFile().add("Container", "Image", bad)
    with pytest.raises(RenderError, match="control character"):
        UnitFile().add("Container", "Environment", (f"A={bad}",))


def test_keys_are_validated_and_word_keys_need_tuples() -> None:
    with pytest.raises(RenderError, match="not a unit-file key"):
        UnitFile().add("Container", "Image=x\nExec", "y")
    with pytest.raises(RenderError, match="tuple of words"):
        UnitFile().add("Container", "Exec", "sh -c x")
    with pytest.raises(RenderError, match="single string"):
        UnitFile().add("Container", "Image", ("a", "b"))


def test_specifiers_and_variables_are_escaped() -> None:
    unit = UnitFile().add("Container", "Environment", ("A=100%", "B=$HOME"))
    unit.add("Unit", "Description", "50% $HOME")
    text = unit.render()
    assert "Environment=A=100%% B=$$HOME" in text
    # Description is not a command line: `$` stays, `%` is still a specifier there.
    assert "Description=50%% $HOME" in text


def test_words_with_spaces_and_quotes_are_quoted() -> None:
    unit = UnitFile().add("Container", "Label", ("a=b c", 'q="x"', "back\\slash"))
    assert unit.render().splitlines()[1] == r'Label="a=b c" "q=\"x\"" "back\\slash"'


def _plain_ok(value: str) -> bool:
    return value == value.strip() and not value.endswith("\\")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_round_trip(value: str) -> None:
    unit = UnitFile()
    unit.add("Container", "Environment", (f"X={value}", value))
    unit.add("Container", "Exec", ("/bin/echo", value))
    if _plain_ok(value):
        unit.add("Container", "Image", value)
        unit.add("Unit", "Description", value)
    else:
        with pytest.raises(RenderError, match="edge whitespace or a trailing backslash"):
            unit.add("Container", "Image", value)
    back = parse(unit.render())
    assert back.get("Container", "Environment") == [(f"X={value}", value)]
    assert back.get("Container", "Exec") == [("/bin/echo", value)]
    if _plain_ok(value):
        assert back.get("Container", "Image") == [value]
        assert back.get("Unit", "Description") == [value]


_REFUSED = {*map(chr, range(32)), *map(chr, range(127, 160)), "\u2028", "\u2029"}
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=_REFUSED),
    max_size=40,
)


@given(single=_text, words=st.lists(_text, max_size=5))
def test_round_trip_property(single: str, words: list[str]) -> None:
    unit = UnitFile()
    if not _plain_ok(single):
        with pytest.raises(RenderError):
            unit.add("Container", "Image", single)
        while not _plain_ok(single):
            single = single.strip().rstrip("\\")
        single = single or "x"
    unit.add("Container", "Image", single)
    unit.add("Container", "PodmanArgs", tuple(words))
    unit.add("Service", "ExecStartPre", ("/bin/true", *words))
    back = parse(unit.render())
    assert back.get("Container", "Image") == [single]
    assert back.get("Container", "PodmanArgs") == [tuple(words)]
    assert back.get("Service", "ExecStartPre") == [("/bin/true", *words)]
    # However hostile, the rendering has exactly one line per entry.
    assert len(unit.render().splitlines()) == 3 + 1 + 1 + 1


def test_split_words_rejects_an_open_quote() -> None:
    with pytest.raises(RenderError, match="unterminated"):
        split_words('"open')


def test_a_lone_semicolon_word_is_quoted() -> None:
    # Unquoted, systemd would end the ExecStart= command there and start another.
    unit = UnitFile().add("Service", "ExecStart", ("/bin/echo", ";", "/bin/rm", "-rf", "/"))
    assert unit.render().splitlines()[1] == 'ExecStart=/bin/echo ";" /bin/rm -rf /'
    assert parse(unit.render()).get("Service", "ExecStart") == [
        ("/bin/echo", ";", "/bin/rm", "-rf", "/")
    ]


def test_only_renderer_specifiers_stay_live() -> None:
    unit = UnitFile().add(
        "Service", "ExecStop", ("/usr/bin/podman", Specifiers("--cidfile=%t/%N.cid"), "100%t")
    )
    assert "ExecStop=/usr/bin/podman --cidfile=%t/%N.cid 100%%t" in unit.render()
    with pytest.raises(RenderError, match="%h is not a specifier"):
        Specifiers("%h/.config")
