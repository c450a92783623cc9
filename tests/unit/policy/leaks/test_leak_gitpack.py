"""A git push's packfile, read object by object (policy/leaks/gitpack.py).

Packs come from the real `git pack-objects`, as `git push` makes them: whole objects,
OFS_DELTA in a full pack, REF_DELTA against a base the server has in a thin one.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from agentcage.config.inspection import SecretsConfig
from agentcage.policy.inspectors.leaks import settings_from
from agentcage.policy.leaks import LeakDetector, LeakSettings, Limits, Protected
from agentcage.policy.leaks.gitpack import Pack, PackError, find_pack, pack_contents, read_pack
from agentcage.policy.types import Headers, Request
from tests.support.git_http import GIT_ENV, git

from .conftest import ANTHROPIC

ZERO = "0" * 40


class Repo:
    def __init__(self, path: Path, object_format: str = "sha1") -> None:
        self.path = path
        git("init", "--quiet", f"--object-format={object_format}", str(path))

    def commit(self, files: dict[str, bytes], message: str = "change") -> str:
        for name, content in files.items():
            (self.path / name).write_bytes(content)
        git("add", "-A", cwd=self.path)
        git("commit", "--quiet", "-m", message, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)

    def pack(self, new: str, old: str | None = None) -> bytes:
        """What `git push` sends for new (thin, against old, when old is given)."""
        revs = f"{new}\n" + (f"^{old}\n" if old else "")
        args = ["pack-objects", "--revs", "--stdout", "--thin", "--delta-base-offset"]
        return _git_bytes(self.path, args, revs.encode())

    def push_body(self, new: str, old: str | None = None, capabilities: str = "") -> bytes:
        line = f"{old or ZERO[: len(new)]} {new} refs/heads/main\0report-status{capabilities}\n"
        return _pkt(line.encode()) + b"0000" + self.pack(new, old)


def _git_bytes(cwd: Path, args: list[str], stdin: bytes) -> bytes:
    env = {**GIT_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True, env=env
    ).stdout


def _pkt(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


def _source(lines: int) -> bytes:
    rng = random.Random(lines)
    words = ["widget", "frame", "render", "value", "count", "index"]
    return "".join(
        f"def f_{n}({rng.choice(words)}):\n    return {rng.choice(words)} + {n}\n"
        for n in range(lines)
    ).encode()


def test_a_push_body_yields_its_files_commit_message_and_ref_names(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    new = repo.commit({"notes.txt": b"remember: " + ANTHROPIC + b"\n"}, "a message to read")
    body = repo.push_body(new)
    pack = find_pack(body)
    assert pack is not None and body[pack.start : pack.start + 4] == b"PACK"
    contents = pack_contents(body, pack, 1 << 20)
    assert contents.complete and contents.objects == 3  # commit, tree, blob
    assert b"remember: " + ANTHROPIC in contents.data
    assert b"a message to read" in contents.data
    assert b"refs/heads/main" in contents.data and b"notes.txt" in contents.data
    assert ANTHROPIC not in body  # compressed: a byte scanner never saw it


def test_a_thin_delta_yields_the_inserted_text_joined_over_git_s_127_byte_inserts(
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "r")
    big = _source(3000)
    old = repo.commit({"app.py": big})
    line = b"# " + b"x" * 110 + b" key=" + ANTHROPIC + b" " + b"y" * 200 + b"\n"
    new = repo.commit({"app.py": big.replace(b"def f_1500(", line + b"def f_1500(")})
    body = repo.push_body(new, old)
    pack = find_pack(body)
    assert pack is not None
    types = {(body[at] >> 4) & 7 for at in _object_starts(body, pack)}
    assert 7 in types  # a REF_DELTA: its base is only on the server
    contents = pack_contents(body, pack, 1 << 20)
    assert line.rstrip(b"\n") in contents.data  # inserted in 127-byte pieces, read whole
    assert len(contents.data) < len(big) // 10  # the base is not in the push


def test_an_offset_delta_in_a_full_pack_yields_its_inserts(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    big = _source(3000)
    repo.commit({"app.py": big})
    new = repo.commit({"app.py": big + b"TOKEN = '" + ANTHROPIC + b"'\n"})
    body = repo.push_body(new)  # both versions: one is a delta of the other
    pack = find_pack(body)
    assert pack is not None
    assert 6 in {(body[at] >> 4) & 7 for at in _object_starts(body, pack)}
    assert ANTHROPIC in pack_contents(body, pack, 1 << 22).data


def test_sha256_repositories_have_longer_base_ids(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r", "sha256")
    big = _source(3000)
    old = repo.commit({"app.py": big})
    new = repo.commit({"app.py": big + ANTHROPIC + b"\n"})
    body = repo.push_body(new, old, " object-format=sha256")
    pack = find_pack(body)
    assert pack == Pack(pack.start if pack else 0, 32)
    assert ANTHROPIC in pack_contents(body, pack, 1 << 20).data


def test_the_limit_stops_the_reading_and_says_so(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    new = repo.commit({"a.bin": random.Random(1).randbytes(50_000)})
    body = repo.push_body(new)
    contents = read_pack(body, 10_000)
    assert contents is not None and not contents.complete


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": "PACKAGE"}',
        b"PACKAGE_NAME=widgets\nPACKAGE_VERSION=2\n",
        b"0000",  # git's probe before a large push
        _pkt(b"hello world\n") + b"0000PACK\0\0\0\2",  # pkt-lines, but no push command
        # A push command whose pkt-line length is wrong: not a push git would send.
        b"00a0" + b"1" * 40 + b" refs/heads/main\0report-status\n0000PACK" + b"\0" * 200,
    ],
    ids=["json", "text-starting-with-pack", "probe", "not-a-command", "wrong-length"],
)
def test_other_data_is_not_taken_for_a_push(data: bytes) -> None:
    assert find_pack(data) is None


def _one_blob_pack() -> bytes:
    blob = b"hello\n"
    header = bytes([0x30 | len(blob)])  # blob, size 6
    body = b"PACK" + struct.pack(">II", 2, 1) + header + zlib.compress(blob)
    return body + b"\1" * 20


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda p: p[:8] + struct.pack(">I", 2) + p[12:], "object 1 has type 0"),
        (lambda p: p[:-25], "cut short"),
        (lambda p: p + b"junk", "bytes after its checksum"),
        (lambda p: p[:-10], "a cut checksum"),
        (lambda p: p[:12] + bytes([0x50 | 6]) + p[13:], "type 5"),
        (lambda p: p[:12] + bytes([0x30 | 5]) + p[13:], "more than its 5 bytes"),
        (lambda p: p[:12] + bytes([0x30 | 9]) + p[13:], "inflates to 6 bytes, not 9"),
        (lambda p: p[:15] + b"\xff\xff" + p[17:], "does not inflate"),
    ],
)
def test_a_malformed_pack_is_an_error_that_says_why(mangle: object, why: str) -> None:
    assert callable(mangle)
    data = mangle(_one_blob_pack())
    assert pack_contents(_one_blob_pack(), Pack(0), 100).data == b"hello\n"
    with pytest.raises(PackError, match=why):
        read_pack(data, 1 << 20)


def _push(body: bytes) -> Request:
    headers = Headers((("content-type", "application/x-git-receive-pack-request"),))
    path = "/org/repo.git/git-receive-pack"
    return Request("POST", "https", "github.com", 443, path, headers, body)


@pytest.fixture
def detector(protected: list[Protected]) -> LeakDetector:
    return LeakDetector(protected)


def test_the_detector_blocks_a_known_value_in_a_pushed_file_and_passes_a_binary_one(
    tmp_path: Path, detector: LeakDetector
) -> None:
    repo = Repo(tmp_path / "r")
    clean = repo.commit({"logo.bin": random.Random(2).randbytes(300_000)})
    assert detector.check_request(_push(repo.push_body(clean))) == []
    leaky = repo.commit({"env": ANTHROPIC}, "add env")
    [finding] = detector.check_request(_push(repo.push_body(leaky, clean)))
    assert finding.rules == ("injected:ANTHROPIC_API_KEY",)


def test_a_pack_inside_base64_is_read_too(tmp_path: Path, detector: LeakDetector) -> None:
    repo = Repo(tmp_path / "r")
    new = repo.commit({"env": ANTHROPIC})
    body = json.dumps({"bundle": base64.b64encode(repo.pack(new)).decode()}).encode()
    views = detector.views(body)
    assert any(v.layers == ("base64", "git-pack") and ANTHROPIC in v.data for v in views)
    assert detector.check_request(_push(body))


def test_the_detector_blocks_a_malformed_pack_with_the_reason(detector: LeakDetector) -> None:
    body = _pkt(f"{ZERO} {'1' * 40} refs/heads/main\0report-status\n".encode()) + b"0000"
    [finding] = detector.check_request(_push(body + _one_blob_pack()[:-10]))
    assert finding.rules == ("malformed-pack",)
    assert "git pack (raw) has a cut checksum" in finding.reason


def _object_starts(data: bytes, pack: Pack) -> list[int]:
    """Where each object of a (well-formed) pack starts, found by inflating each."""
    starts = []
    pos = pack.start + 12
    for _ in range(struct.unpack_from(">I", data, pack.start + 8)[0]):
        starts.append(pos)
        byte = data[pos]
        kind = (byte >> 4) & 7
        pos += 1
        while byte & 0x80:
            byte = data[pos]
            pos += 1
        if kind == 6:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind == 7:
            pos += pack.id_length
        decomp = zlib.decompressobj()
        decomp.decompress(data[pos:])
        pos = len(data) - len(decomp.unused_data)
    return starts


def test_a_push_past_the_byte_budget_is_blocked_and_says_what_was_unread(
    tmp_path: Path, protected: list[Protected]
) -> None:
    repo = Repo(tmp_path / "r")
    files = {f"f{n}.bin": random.Random(n).randbytes(100_000) for n in range(4)}
    body = repo.push_body(repo.commit(files))
    small = LeakDetector(protected, LeakSettings(unwrap=Limits(budget=250_000)))
    [finding] = small.check_request(_push(body))
    assert finding.rules == ("undecoded-layers",)
    assert "larger than the leak inspector reads (git pack objects past the first" in finding.reason
    assert "raise secrets.decode_budget" in finding.reason
    assert LeakDetector(protected).check_request(_push(body)) == []


def test_the_configured_decode_budget_is_the_one_the_detector_reads_with(
    tmp_path: Path, protected: list[Protected]
) -> None:
    repo = Repo(tmp_path / "r")
    files = {f"f{n}.bin": random.Random(n).randbytes(400_000) for n in range(4)}
    body = repo.push_body(repo.commit(files))
    assert Limits().budget == SecretsConfig().decode_budget  # one default, two layers
    tight = settings_from(SecretsConfig(decode_budget="1MiB"))
    [finding] = LeakDetector(protected, tight).check_request(_push(body))
    assert finding.rules == ("undecoded-layers",)
    roomy = settings_from(SecretsConfig(decode_budget="4MiB"))
    assert LeakDetector(protected, roomy).check_request(_push(body)) == []


def test_a_compressed_file_in_a_push_is_unpacked(tmp_path: Path, detector: LeakDetector) -> None:
    repo = Repo(tmp_path / "r")
    new = repo.commit({"backup.gz": gzip.compress(b"env: " + ANTHROPIC), "a.txt": b"hi\n"})
    views = detector.views(repo.push_body(new))
    assert any(v.layers == ("git-pack", "decompress") and ANTHROPIC in v.data for v in views)
    [finding] = detector.check_request(_push(repo.push_body(new)))
    assert finding.rules == ("injected:ANTHROPIC_API_KEY",)


def test_a_push_with_another_pack_version_is_malformed(detector: LeakDetector) -> None:
    pack = _one_blob_pack()
    body = _pkt(f"{ZERO} {'1' * 40} refs/heads/main\0report-status\n".encode()) + b"0000"
    [finding] = detector.check_request(_push(body + pack[:4] + struct.pack(">I", 9) + pack[8:]))
    assert finding.rules == ("malformed-pack",)
    assert "has version 9, not 2 or 3" in finding.reason
    assert detector.check_request(_push(b"PACKAGE_NAME=widgets\n")) == []


def test_a_push_spelled_in_capital_hex_is_read(tmp_path: Path, detector: LeakDetector) -> None:
    repo = Repo(tmp_path / "r")
    new = repo.commit({"env": ANTHROPIC})
    line = f"{ZERO} {new.upper()} refs/heads/main\0report-status agent=x\n".encode()
    assert (b"%04X" % (len(line) + 4)).strip(b"0123456789")  # a capital in the length
    body = b"%04X" % (len(line) + 4) + line + b"0000" + repo.pack(new)
    assert find_pack(body) is not None
    assert detector.check_request(_push(body))


def test_a_bundle_and_a_packfile_committed_in_a_push_are_read(
    tmp_path: Path, detector: LeakDetector
) -> None:
    inner = Repo(tmp_path / "inner")
    inner.commit({"env": ANTHROPIC})
    git("bundle", "create", str(tmp_path / "all.bundle"), "--all", cwd=inner.path)
    bundle = (tmp_path / "all.bundle").read_bytes()
    bundled = read_pack(bundle, 1 << 20)
    assert bundled is not None and ANTHROPIC in bundled.data
    outer = Repo(tmp_path / "outer")
    new = outer.commit({"backup.bundle": bundle})
    assert detector.check_request(_push(outer.push_body(new)))
    pack_only = outer.commit({"backup.bundle": b"", "objects.pack": inner.pack("HEAD")}, "pack")
    assert detector.check_request(_push(outer.push_body(pack_only, new)))
