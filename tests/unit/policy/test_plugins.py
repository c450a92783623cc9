"""Custom inspectors loaded by file path and by module path, and their failure modes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agentcage.errors import PolicyError
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import frame, policy, request

PLUGIN = textwrap.dedent(
    """
    from agentcage.policy.types import Finding, Verdict

    class NoDelete:
        name = "no-delete"

        def configure(self, config):
            self.methods = set(config.get("methods", ["DELETE"]))

        def inspect_request(self, request):
            if request.method in self.methods:
                return Finding(self.name, Verdict.BLOCK, f"{request.method} is not allowed")
            return None

        def inspect_frame(self, frame):
            if b"rm -rf" in frame.payload:
                return Finding(self.name, Verdict.FLAG, "scary command")
            return None
    """
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_by_path_with_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "nodelete.py", PLUGIN)
    engine = policy(
        inspectors=[{"name": "guard", "path": str(path), "config": {"methods": ["PUT"]}}]
    )
    assert engine.check_request(request(method="DELETE")).verdict is Verdict.ALLOW
    decision = engine.check_request(request(method="PUT"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.reason == "PUT is not allowed"
    assert engine.check_frame(frame(b"rm -rf /")).verdict is Verdict.FLAG


def test_load_by_relative_path_and_class_suffix(tmp_path: Path) -> None:
    _write(tmp_path, "two.py", PLUGIN + "\nclass Other:\n    def inspect_request(self, r): ...\n")
    from agentcage.policy.engine import Policy
    from tests.unit.policy.helpers import config

    cfg = config(inspectors=[{"name": "guard", "path": "two.py:NoDelete"}])
    engine = Policy.from_config(cfg, {}, environ={}, base_dir=tmp_path)
    assert engine.check_request(request(method="DELETE")).verdict is Verdict.BLOCK


def test_load_by_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "acme_inspectors"
    package.mkdir()
    _write(package, "__init__.py", "")
    _write(package, "methods.py", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("acme_inspectors.methods", "acme_inspectors.methods:NoDelete"):
        engine = policy(inspectors=[{"name": "guard", "module": module}])
        decision = engine.check_request(request(method="DELETE"))
        assert decision.verdict is Verdict.BLOCK
        assert decision.inspector == "guard"  # named as in the config


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("raise ImportError('missing dep')", "importing"),
        ("x = 1\n", "expected one inspector class"),
        (
            "class A:\n    def __init__(self, x): ...\n    def inspect_request(self, r): ...\n",
            "failed",
        ),
        (
            "class A:\n    def configure(self, c):\n        raise ValueError('bad')\n"
            "    def inspect_request(self, r): ...\n",
            "rejected its config",
        ),
        # Plugin code that raises what no error should: still a PolicyError, not an exit.
        ("import sys\nsys.exit(3)\n", "importing .*SystemExit"),
        (
            "class A:\n    def __init__(self):\n        raise KeyboardInterrupt\n"
            "    def inspect_request(self, r): ...\n",
            "failed: KeyboardInterrupt",
        ),
        (
            "class A:\n    def configure(self, c):\n        raise GeneratorExit\n"
            "    def inspect_request(self, r): ...\n",
            "rejected its config: GeneratorExit",
        ),
    ],
)
def test_load_errors_are_policy_errors(tmp_path: Path, source: str, message: str) -> None:
    path = _write(tmp_path, "broken.py", source)
    with pytest.raises(PolicyError, match=message) as info:
        policy(inspectors=[{"name": "broken", "path": str(path), "config": {"a": 1}}])
    assert info.value.hint


def test_missing_file_module_and_class(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="is not a file"):
        policy(inspectors=[{"name": "x", "path": str(tmp_path / "nope.py")}])
    with pytest.raises(PolicyError, match="cannot import"):
        policy(inspectors=[{"name": "x", "module": "no_such_module_here"}])
    path = _write(tmp_path, "p.py", PLUGIN)
    with pytest.raises(PolicyError, match="no class"):
        policy(inspectors=[{"name": "x", "path": f"{path}:Missing"}])


def test_config_without_configure_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.py", "class A:\n    def inspect_request(self, r):\n        return None\n"
    )
    with pytest.raises(PolicyError, match="no configure"):
        policy(inspectors=[{"name": "x", "path": str(path), "config": {"k": 1}}])


def test_runtime_exception_blocks(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "crash.py",
        "class Crash:\n    def inspect_request(self, r):\n        return 1 / 0\n",
    )
    decision = policy(inspectors=[{"name": "crash", "path": str(path)}]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "crash"
    assert decision.reason == "inspector-error: ZeroDivisionError"


def test_inspector_whose_name_cannot_be_set_is_wrapped(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "prop.py",
        "from agentcage.policy.types import Finding, Verdict\n"
        "class P:\n"
        "    @property\n"
        "    def name(self):\n"
        "        return 'fixed'\n"
        "    def inspect_request(self, r):\n"
        "        return Finding('fixed', Verdict.FLAG, 'seen')\n",
    )
    engine = policy(inspectors=[{"name": "prop", "path": str(path)}])
    assert engine.chain.inspectors[-1].name == "prop"
    assert engine.check_request(request()).verdict is Verdict.FLAG


def test_finding_with_a_string_verdict_blocks(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sloppy.py",
        "from agentcage.policy.types import Finding\n"
        "class S:\n"
        "    def inspect_request(self, r):\n"
        "        return Finding('s', 'allow', 'looks fine')\n",
    )
    decision = policy(inspectors=[{"name": "sloppy", "path": str(path)}]).check_request(request())
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "sloppy"


def test_the_documented_example_plugin_works(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "inspectors.md"
    text = docs.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    path = _write(tmp_path, "no_delete.py", code)
    engine = policy(
        inspectors=[{"name": "no-delete", "path": str(path), "config": {"methods": ["DELETE"]}}]
    )
    decision = engine.check_request(request(method="DELETE"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.inspector == "no-delete"
    assert engine.check_frame(frame(b"rm -rf /")).verdict is Verdict.FLAG
