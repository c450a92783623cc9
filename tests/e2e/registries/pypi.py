"""A synthetic Python package index: pypi.org/simple (PEP 503 HTML and PEP 691 JSON) and
the wheels on files.pythonhosted.org, written as files.

`count` pure-Python projects depend on each other as a DAG (up to three later projects
each); requirements.txt names every project nothing else requires, so an install pulls in
all of them. Each has two versions, and `>=1.0` picks the newer. No PEP 658 metadata
files: pip downloads whole wheels and uv reads their metadata with Range requests, as
against many real indexes. Output is deterministic for a given count.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.registries.dag import dependency_dag

INDEX_HOST = "pypi.org"
FILES_HOST = "files.pythonhosted.org"
VERSIONS = ("1.0.0", "1.1.0")
LATEST = VERSIONS[-1]


@dataclass(frozen=True)
class Project:
    name: str  # normalized (PEP 503)
    requires: tuple[str, ...]

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    def wheel_name(self, version: str) -> str:
        return f"{self.module}-{version}-py3-none-any.whl"


@dataclass
class PyIndex:
    projects: list[Project]
    top_level: list[str]
    wheel_paths: dict[str, str]  # wheel file name -> path on FILES_HOST

    def latest_wheels(self) -> set[str]:
        return {self.wheel_paths[p.wheel_name(LATEST)] for p in self.projects}


def plan(count: int, seed: int = 691) -> PyIndex:
    graph, top = dependency_dag([f"e2e-lib-{i:03d}" for i in range(count)], seed)
    return PyIndex([Project(name, deps) for name, deps in graph.items()], top, {})


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(project: Project, version: str) -> bytes:
    info = f"{project.module}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project.name}",
        f"Version: {version}",
        "Summary: Synthetic package for agentcage tests",
        "Requires-Python: >=3.8",
        *(f"Requires-Dist: {r}>=1.0" for r in project.requires),
    ]
    imports = "".join(f"import {r.replace('-', '_')}  # noqa: F401\n" for r in project.requires)
    files = {
        f"{project.module}/__init__.py": f'{imports}NAME = "{project.name}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: agentcage-e2e\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(zipfile.ZipInfo(path, (2024, 1, 1, 0, 0, 0)), data)
    return raw.getvalue()


def write(index: PyIndex, root: Path) -> None:
    """Wheels under root/FILES_HOST/packages, project pages under root/INDEX_HOST/simple."""
    for project in index.projects:
        files: list[dict[str, Any]] = []
        for version in VERSIONS:
            data = _wheel(project, version)
            sha = hashlib.sha256(data).hexdigest()
            filename = project.wheel_name(version)
            path = f"/packages/{sha[:2]}/{sha[2:4]}/{sha[4:]}/{filename}"
            (root / FILES_HOST / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / FILES_HOST / path.lstrip("/")).write_bytes(data)
            index.wheel_paths[filename] = path
            files.append(
                {
                    "filename": filename,
                    "url": f"https://{FILES_HOST}{path}",
                    "hashes": {"sha256": sha},
                    "requires-python": ">=3.8",
                }
            )
        page = root / INDEX_HOST / "simple" / project.name
        page.mkdir(parents=True, exist_ok=True)
        meta = {"api-version": "1.0"}
        (page / "index.v1.json").write_text(
            json.dumps({"meta": meta, "name": project.name, "files": files})
        )
        links = "".join(
            f'<a href="{f["url"]}#sha256={f["hashes"]["sha256"]}" '
            f'data-requires-python="{html.escape(">=3.8")}">{f["filename"]}</a><br>\n'
            for f in files
        )
        (page / "index.html").write_text(
            f'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
            f'content="1.0"><title>Links for {project.name}</title></head>\n'
            f"<body><h1>Links for {project.name}</h1>\n{links}</body></html>\n"
        )


def requirements(index: PyIndex) -> str:
    return "".join(f"{name}>=1.0\n" for name in index.top_level)
