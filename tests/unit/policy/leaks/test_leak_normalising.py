"""Normalisers under the Unwrapper: Unicode disguises, wide text, text spellings, unpacking.

Each has a true positive (the disguised key comes out as itself) and a near miss
(ordinary data of the same shape yields nothing, so costs no view).
"""

from __future__ import annotations

import base64
import bz2
import io
import json
import lzma
import random
import tarfile
import zipfile
import zlib

import brotli
import pytest

from agentcage.policy.leaks import Unwrapper
from agentcage.policy.leaks.textcodes import (
    SEARCHED_BELOW,
    base32_run,
    base85,
    char_arrays,
    code_lists,
    text_codes,
    unxor,
)
from agentcage.policy.leaks.unicode_fold import decode_wide, fold_unicode
from agentcage.policy.leaks.unpacking import unpack
from agentcage.policy.leaks.unwrap import DEJUNKED

from .conftest import GITHUB


def _seen(data: bytes) -> bytes:
    return b"\n".join(v.data for v in Unwrapper().views(data))


# --- Unicode -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "disguise",
    [
        lambda t: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t),  # full width
        lambda t: "\u200b".join(t),  # zero-width space between characters
        lambda t: "\u2010".join(t),  # Unicode hyphen between characters
        lambda t: "\u00b7".join(t),  # middle dot
        lambda t: "\u00ad".join(t),  # soft hyphen
        lambda t: "".join(c + "\u0301" for c in t),  # a combining mark on each
        lambda t: t.replace("p", "\u0440").replace("h", "\u04bb"),  # Cyrillic look-alikes
        lambda t: t.replace("A", "\u0391").replace("E", "\u0395"),  # Greek capitals
        lambda t: "\u2219".join(t),  # bullet operator: any symbol, listed or not
        lambda t: "\u22c5".join(t),  # dot operator
        lambda t: "\U0001f600".join(t),  # an emoji
        lambda t: "\u2e31".join(t),  # word separator middle dot
    ],
    ids=[
        "fullwidth",
        "zwsp",
        "hyphen",
        "middle-dot",
        "soft-hyphen",
        "combining",
        "cyrillic",
        "greek",
        "bullet-operator",
        "dot-operator",
        "emoji",
        "word-separator-dot",
    ],
)
def test_unicode_disguises_fold_back_to_the_key(disguise) -> None:  # type: ignore[no-untyped-def]
    text = "token: " + disguise(GITHUB.decode())
    assert GITHUB in (fold_unicode(text.encode()) or b"")
    assert GITHUB in _seen(json.dumps({"v": text}, ensure_ascii=False).encode())


def test_unicode_text_without_disguises_is_left_alone() -> None:
    assert fold_unicode(b"plain ascii") is None
    assert fold_unicode("\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8".encode()) is None
    # Letters of other scripts are words, not separators: they stay.
    assert fold_unicode("ab\u4e2dcd".encode()) is None
    assert fold_unicode(b"\xff\xfe\x00binary\x80\x81") is None  # not UTF-8 at all


def test_large_text_is_folded_around_its_non_ascii_bytes_only() -> None:
    body = b"x" * 100_000 + "\u200b".join(GITHUB.decode()).encode() + b"y" * 100_000
    folded = fold_unicode(body)
    assert folded is not None and GITHUB in folded and len(folded) < 2_000


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_utf16_and_utf32_text_is_decoded(codec: str) -> None:
    body = ("config dump: " + GITHUB.decode()).encode(codec)
    assert decode_wide(body) == b"config dump: " + GITHUB
    assert GITHUB in _seen(body)
    assert GITHUB in _seen(base64.b64encode(body))  # base64 of UTF-16


def test_binary_with_nul_bytes_is_not_wide_text() -> None:
    assert decode_wide(bytes(range(256)) * 4) is None
    assert decode_wide(b"\x00\x01" * 8) is None
    assert decode_wide(b"no nul bytes at all, just text") is None


# --- text spellings ----------------------------------------------------------------


def test_json_character_arrays_are_joined() -> None:
    array = json.dumps(list(GITHUB.decode())).encode()
    assert char_arrays(b'{"chars": ' + array + b"}") == GITHUB
    assert GITHUB in _seen(b'{"chars": ' + array + b"}")
    assert char_arrays(b'["a", "b", "c"]') == b""  # under eight
    assert char_arrays(b'["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "th"]') == b""


@pytest.mark.parametrize(
    "spell",
    [
        lambda v: b", ".join(b"%d" % c for c in v),
        lambda v: b" ".join(b"%d" % c for c in v),
        lambda v: b",".join(b"0x%02x" % c for c in v),
        lambda v: b"-".join(b"%02x" % c for c in v),
        lambda v: b":".join(b"%02X" % c for c in v),
        lambda v: b" ".join(b"%02x" % c for c in v),
    ],
    ids=["decimal-comma", "decimal-space", "0x-list", "hex-dash", "hex-colon", "hex-space"],
)
def test_code_lists_and_delimited_hex_are_decoded(spell) -> None:  # type: ignore[no-untyped-def]
    data = b"payload = [" + spell(GITHUB) + b"]"
    assert code_lists(data) == GITHUB
    assert GITHUB in _seen(data)


def test_numbers_that_spell_no_text_are_ignored() -> None:
    ids = b"ids: " + b", ".join(b"%d" % n for n in range(1, 30))  # control characters
    assert code_lists(ids) == b""
    stamps = b", ".join(b"%d" % (1_700_000_000 + n) for n in range(10))  # too large
    assert code_lists(stamps) == b""
    fingerprint = b":".join(b"%02X" % b for b in bytes(range(200, 232)))  # binary
    assert code_lists(b"SHA256 " + fingerprint) == b""


@pytest.mark.parametrize(
    "encode",
    [
        base64.b85encode,
        lambda v: base64.a85encode(v, adobe=True),
        base64.a85encode,
        lambda v: b'{"x": "' + base64.a85encode(b"key: " + v) + b'"}',  # no `\\` or `"` in it
        lambda v: b"/upload?d=" + base64.b85encode(v),  # `?d=` is base85 too
    ],
    ids=["b85", "ascii85-adobe", "ascii85-bare", "ascii85-in-json", "b85-query-value"],
)
def test_base85_and_ascii85_are_decoded(encode) -> None:  # type: ignore[no-untyped-def]
    assert GITHUB in base85(encode(GITHUB))
    assert GITHUB in _seen(b"blob " + encode(GITHUB))


def test_code_that_looks_like_base85_decodes_to_nothing() -> None:
    source = b"function f(){return(a<b)&&(c>d)||x%2==0;}" * 3
    assert base85(source) == b""


def test_base32_runs_are_decoded() -> None:
    assert base32_run(base64.b32encode(GITHUB)) == GITHUB
    assert base32_run(base64.b32encode(GITHUB).lower().rstrip(b"=")) == GITHUB
    assert GITHUB in _seen(b"k=" + base64.b32encode(GITHUB))
    assert base32_run(b"ABCDEFGHIJKLMNOPQRST") == b""  # decodes to binary
    assert base32_run(b"MixedCaseRunOfTwentyChars") == b""  # not one case


def test_large_views_are_not_searched_for_text_spellings() -> None:
    spelled = b", ".join(b"%d" % c for c in GITHUB)
    assert dict(text_codes(b"x " * 100 + spelled))["char-codes"] == GITHUB
    assert list(text_codes(b"x " * SEARCHED_BELOW + spelled)) == []


# --- unpacking ---------------------------------------------------------------------

PAYLOAD = b'{"env": "' + GITHUB + b'", "note": "plain text inside"}'


def _zip(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        archive.writestr("a.txt", b"first member")
        archive.writestr("env.json", data)
    return out.getvalue()


def _tar(data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("env.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _zip_bzip2(data: bytes) -> bytes:
    return _zip(data, zipfile.ZIP_BZIP2)


def _zip_lzma(data: bytes) -> bytes:
    return _zip(data, zipfile.ZIP_LZMA)


def _zip_after_junk(data: bytes) -> bytes:
    return b"#!/bin/sh\nexit 0\n" + _zip(data)


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    "pack",
    [
        bz2.compress,
        lzma.compress,
        _zip,
        _zip_bzip2,
        _zip_lzma,
        _zip_after_junk,
        _tar,
        _raw_deflate,
        brotli.compress,
    ],
    ids=[
        "bzip2",
        "xz",
        "zip",
        "zip-bzip2-member",
        "zip-lzma-member",
        "zip-after-junk",
        "tar",
        "raw-deflate",
        "brotli",
    ],
)
def test_packed_data_is_unpacked_without_a_header(pack) -> None:  # type: ignore[no-untyped-def]
    unpacked = unpack(pack(PAYLOAD), 1 << 20)
    assert unpacked is not None and GITHUB in unpacked[1]
    assert GITHUB in _seen(pack(PAYLOAD))
    assert GITHUB in _seen(base64.b64encode(pack(PAYLOAD)))


def test_random_bytes_and_text_are_not_unpacked() -> None:
    noise = bytes((i * 7919 + 13) % 251 for i in range(4096))
    assert unpack(noise, 1 << 20) is None
    assert unpack(b"just some text that is not packed at all", 1 << 20) is None


def test_unpacking_stops_at_the_limit() -> None:
    bomb = bz2.compress(b"\0" * 5_000_000)
    unpacked = unpack(bomb, 1000)
    assert unpacked is not None and len(unpacked[1]) == 1000


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_a_zip_member_bomb_stops_at_the_limit(method: int) -> None:
    unpacked = unpack(_zip(b"\0" * 5_000_000, method), 1000)
    assert unpacked is not None and len(unpacked[1]) <= 1000 + 1  # and a NUL between members


def test_a_bomb_without_a_header_exhausts_the_budget() -> None:
    views = Unwrapper().views(lzma.compress(b"\0" * 40 * 1024 * 1024))
    assert views.exhausted


# --- interleaved junk --------------------------------------------------------------


def test_a_value_with_a_junk_character_after_each_of_its_own_is_read_back() -> None:
    rng = random.Random(3)
    junk = "".join(c + rng.choice("abcdefghijklmnopqrstuvwxyz") for c in GITHUB.decode())
    assert GITHUB in _seen(json.dumps({"id": 7, "data": junk}).encode())
    short = "".join(c + "x" for c in "short")  # runs under 16 are not read for junk
    assert all(v.layers != ("interleaved",) for v in Unwrapper().views(short.encode()))


@pytest.mark.parametrize("every", [2, 3, 4])
def test_a_junk_character_after_every_few_real_ones_is_taken_out(every: int) -> None:
    value = GITHUB.decode()
    for phase in range(every):  # the value starts anywhere in the run
        junk = "qz"[: phase % 2] + "".join(
            value[i : i + every] + "qzjxkvwy"[i % 8] for i in range(0, len(value), every)
        )
        assert GITHUB in _seen(json.dumps({"id": 7, "data": junk}).encode())


def test_junk_every_few_characters_is_read_only_in_the_request_itself() -> None:
    value = GITHUB.decode()
    junk = "".join(value[i : i + 3] + "q" for i in range(0, len(value), 3)).encode()
    views = Unwrapper().views(junk + b" " + base64.b64encode(junk))
    guessed = [v for v in views if DEJUNKED in v.layers]
    assert [v.layers for v in guessed] == [(DEJUNKED,)]  # not beneath base64, not decoded
    assert GITHUB in guessed[0].data


def test_junk_every_few_characters_is_not_guessed_in_large_views() -> None:
    value = GITHUB.decode()
    junk = "".join(value[i : i + 3] + "q" for i in range(0, len(value), 3))
    large = json.dumps({"notes": "plain words " * 2000, "data": junk}).encode()
    assert GITHUB not in _seen(large)  # 2 + 3 + 4 copies of every run: small views only


# --- one-byte XOR ------------------------------------------------------------------


@pytest.mark.parametrize("key", [0x41, 0x5A, 0x7F, 0x80, 0xA5, 0xFF])
def test_text_under_a_one_byte_xor_key_is_recovered(key: int) -> None:
    hidden = bytes(b ^ key for b in b"token=" + GITHUB)
    assert GITHUB in b"\n".join(unxor(hidden))
    assert GITHUB in _seen(b'{"blob": "' + base64.b64encode(hidden) + b'"}')


def test_each_xor_table_maps_a_byte_to_it_xor_its_key() -> None:
    # Built as one integer XOR each (a byte at a time cost the proxy's start ~2 ms).
    from agentcage.policy.leaks.textcodes import _XOR_TABLES

    assert [bytes(b ^ key for b in range(256)) for key in range(256)] == _XOR_TABLES


def test_text_and_random_bytes_are_not_unxored() -> None:
    assert unxor(b'{"role": "user", "content": "plain text, as it is"}') == []
    assert unxor(bytes((i * 7919 + 13) % 251 for i in range(64))) == []  # top bits differ
