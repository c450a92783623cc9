"""A local Python package index: a PEP 503 simple index directory, served on loopback.

`PackageIndex.add(name, version)` writes a minimal wheel (metadata only; for `platform`,
default `any`) and rewrites the pages; `serve()` serves the directory over HTTP on
127.0.0.1 from a thread.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class PackageIndex:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = ""
        root.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, version: str, platform: str = "any") -> Path:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        info = f"{name}-{version}.dist-info"
        path = folder / f"{name}-{version}-py3-none-{platform}.whl"
        with zipfile.ZipFile(path, "w") as wheel:
            wheel.writestr(f"{name}/__init__.py", "")
            wheel.writestr(
                f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            )
            wheel.writestr(
                f"{info}/WHEEL",
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                f"Tag: py3-none-{platform}\n",
            )
            wheel.writestr(f"{info}/RECORD", "")
        self._pages()
        return path

    def _pages(self) -> None:
        projects = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        for project in projects:
            links = []
            for wheel in sorted((self.root / project).glob("*.whl")):
                sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
                links.append(f'<a href="{wheel.name}#sha256={sha}">{wheel.name}</a>')
            (self.root / project / "index.html").write_text("<html><body>" + "".join(links))
        top = "".join(f'<a href="{project}/">{project}</a>' for project in projects)
        (self.root / "index.html").write_text("<html><body>" + top)

    @contextmanager
    def serve(self) -> Iterator[str]:
        handler = functools.partial(_Quiet, directory=str(self.root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            yield self.url
        finally:
            server.shutdown()
            server.server_close()
