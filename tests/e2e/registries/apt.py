"""A signed apt repository for deb.debian.org: a few .debs built with dpkg-deb, their
`Packages` index and an `InRelease` signed with a key made for the test.

The agent trusts that key through `Signed-By` in the sources file written beside it, as
a user does for a third-party repository.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOST = "deb.debian.org"
SUITE = "bookworm"
VERSION = "1.0-1"
KEYRING = "agentcage-e2e.gpg"


@dataclass(frozen=True)
class Deb:
    name: str
    depends: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...]  # path under / -> content

    @property
    def pool_path(self) -> str:
        return f"/debian/pool/main/a/{self.name}/{self.name}_{VERSION}_all.deb"


def packages() -> list[Deb]:
    blob = random.Random(18).randbytes(1 << 20)  # incompressible: a real download's size
    lib = ("usr/share/agentcage-e2e-lib/lib.sh", b"greet() { echo 'hello from the cage'; }\n")
    hello = ("usr/bin/agentcage-e2e-hello", b"#!/bin/sh\n. /" + lib[0].encode() + b"\ngreet\n")
    return [
        Deb("agentcage-e2e-lib", (), (lib,)),
        Deb("agentcage-e2e-hello", ("agentcage-e2e-lib",), (hello,)),
        Deb("agentcage-e2e-data", (), (("usr/share/agentcage-e2e-data/blob.bin", blob),)),
        Deb("agentcage-e2e-tool", ("agentcage-e2e-hello", "agentcage-e2e-data"),
            (("usr/share/doc/agentcage-e2e-tool/README", b"Synthetic package.\n"),)),
    ]  # fmt: skip


def _control(deb: Deb) -> str:
    lines = [
        f"Package: {deb.name}",
        f"Version: {VERSION}",
        "Architecture: all",
        "Maintainer: agentcage tests <e2e@example.invalid>",
        "Section: misc",
        "Priority: optional",
        f"Installed-Size: {max(1, sum(len(data) for _, data in deb.files) // 1024)}",
    ]
    if deb.depends:
        lines.append("Depends: " + ", ".join(f"{d} (>= {VERSION})" for d in deb.depends))
    lines.append(f"Description: {deb.name} (synthetic package for agentcage tests)")
    return "\n".join(lines) + "\n"


def _build(deb: Deb, out: Path) -> bytes:
    with tempfile.TemporaryDirectory(prefix="e2e-deb-") as tmp:
        tree = Path(tmp) / "tree"
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN" / "control").write_text(_control(deb))
        for path, data in deb.files:
            target = tree / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755 if path.startswith("usr/bin/") else 0o644)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SOURCE_DATE_EPOCH": "1704067200"},
        )
    return out.read_bytes()


def _gpg(home: Path, *args: str) -> None:
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--quiet", "--yes", *args],
        check=True,
        capture_output=True,
    )


def write(root: Path, client: Path) -> list[Deb]:
    """The repository under root/HOST/debian; the keyring and sources file into client."""
    site = root / HOST
    stanzas = []
    debs = packages()
    for deb in debs:
        data = _build(deb, site / deb.pool_path.lstrip("/"))
        stanzas.append(
            _control(deb)
            + f"Filename: {deb.pool_path.removeprefix('/debian/')}\nSize: {len(data)}\n"
            + f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    dists = site / "debian" / "dists" / SUITE
    index = "\n".join(stanzas).encode()
    indexes = {
        "main/binary-amd64/Packages": index,
        "main/binary-amd64/Packages.gz": gzip.compress(index, mtime=0),
    }
    for name, data in indexes.items():
        (dists / name).parent.mkdir(parents=True, exist_ok=True)
        (dists / name).write_bytes(data)
    release = "".join(
        [
            "Origin: agentcage-e2e\nLabel: agentcage-e2e\n",
            f"Suite: {SUITE}\nCodename: {SUITE}\n",
            f"Date: {email.utils.formatdate(usegmt=True)}\n",
            "Architectures: amd64\nComponents: main\n",
            "Description: synthetic packages for agentcage tests\nSHA256:\n",
            *(f" {hashlib.sha256(d).hexdigest()} {len(d)} {n}\n" for n, d in indexes.items()),
        ]
    )
    (dists / "Release").write_text(release)
    home = Path(tempfile.mkdtemp(prefix="e2e-gpg-"))
    try:
        _gpg(home, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key",
             "agentcage e2e archive <e2e@example.invalid>", "ed25519", "sign", "never")  # fmt: skip
        _gpg(home, "--clearsign", "--output", str(dists / "InRelease"), str(dists / "Release"))
        client.mkdir(parents=True, exist_ok=True)
        _gpg(home, "--export", "--output", str(client / KEYRING))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    return debs


def sources(keyring: str) -> str:
    """A deb822 sources file for the repository, trusting only the test's key."""
    return (
        f"Types: deb\nURIs: https://{HOST}/debian\nSuites: {SUITE}\n"
        f"Components: main\nSigned-By: {keyring}\n"
    )
