"""What the fake internet answers for the package registries (tests/e2e/registries).

`StaticSite` serves www/<host>/<path> as a registry would (a POST to a file gets the
file, as npm's audit endpoint answers a query): a directory answers with
its index (PEP 691 JSON when the client asks for it, else JSON or HTML), single byte
ranges get 206 (uv reads wheel metadata that way), HEAD gets the headers alone.
`GitSite` runs `git http-backend` as a CGI program over git/<host>/<owner>/<repo>.git,
for smart-HTTP clone and push. Either answers only for what exists, so every other
request gets the fake internet's usual answer.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

PYPI_JSON = "application/vnd.pypi.simple.v1+json"
TYPES = {
    ".tgz": "application/octet-stream",
    ".whl": "application/octet-stream",
    ".deb": "application/vnd.debian.binary-package",
    ".gz": "application/gzip",
    ".json": "application/json",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class StaticSite:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def reply(self, method: str, host: str, path: str, headers: dict[str, str]) -> Reply | None:
        """The file for host and path, or None if there is none."""
        base = (self.root / host).resolve()
        target = (base / path.lstrip("/")).resolve()
        if method not in ("GET", "HEAD", "POST") or host in ("", "."):
            return None
        if not target.is_relative_to(base):
            return None
        content_type = TYPES.get(target.suffix, "text/plain")
        if target.is_dir() and method != "POST":
            target, content_type = self._index(target, headers.get("accept", ""))
        if not target.is_file():
            return None
        data = target.read_bytes()
        reply = Reply(200, data, [("content-type", content_type), ("accept-ranges", "bytes")])
        wanted = _RANGE.match(headers.get("range", "").strip())
        if wanted:
            reply = self._range(data, wanted.group(1), wanted.group(2), content_type)
        reply.headers.append(("content-length", str(len(reply.body))))
        if method == "HEAD":
            reply.body = b""
        return reply

    @staticmethod
    def _index(directory: Path, accept: str) -> tuple[Path, str]:
        if PYPI_JSON in accept and (directory / "index.v1.json").is_file():
            return directory / "index.v1.json", PYPI_JSON
        if (directory / "index.json").is_file():
            return directory / "index.json", "application/json"
        return directory / "index.html", "text/html"

    @staticmethod
    def _range(data: bytes, first: str, last: str, content_type: str) -> Reply:
        size = len(data)
        if not first and not last:
            return Reply(416, headers=[("content-range", f"bytes */{size}")])
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # a suffix: the last N bytes
            start, end = max(0, size - int(last)), size - 1
        if start > end:
            return Reply(416, headers=[("content-range", f"bytes */{size}")])
        return Reply(
            206,
            data[start : end + 1],
            [
                ("content-type", content_type),
                ("accept-ranges", "bytes"),
                ("content-range", f"bytes {start}-{end}/{size}"),
            ],
        )


class GitSite:
    """`git http-backend` over the repositories under root/<host> (CGI, RFC 3875)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def handles(self, host: str, path: str) -> bool:
        """Whether path is inside a repository that exists."""
        name, sep, _ = path.partition(".git/")
        base = (self.root / host).resolve()
        repo = (base / f"{name.lstrip('/')}.git").resolve()
        return bool(sep) and repo.is_relative_to(base) and (repo / "HEAD").is_file()

    async def reply(
        self, host: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        env = {
            "GIT_PROJECT_ROOT": str(self.root / host),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "10.250.0.1",
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }
        proc = await asyncio.create_subprocess_exec(
            "git", "http-backend",
            env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate(body)
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = out.partition(b"\n\n")
        reply = Reply(200, payload)
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                reply.status = int(value.split()[0])
            elif name:
                reply.headers.append((name.strip().lower(), value.strip()))
        if proc.returncode != 0 and reply.status == 200:
            return Reply(500, err, [("content-type", "text/plain")])
        reply.headers.append(("content-length", str(len(reply.body))))
        return reply
