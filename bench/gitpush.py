"""Cost of reading `git push` packs in `Policy.check_request`, against not reading them.

Run: .venv/bin/python bench/gitpush.py [--runs N]
Builds push bodies with the real `git` (a 10 MiB random binary file, a 2 MiB source
tree, and a thin push of one changed line in that tree) and times the whole policy on
each: with the pack reader, and with it switched off (the engine before it: the pack's
compressed bytes scanned as they are). Prints ms per request and the ratio.
No assertions: speed is reported, not tested.

`--false-blocks N` instead makes N pushes like tests/e2e's git run (tests/e2e/
package_runs.py: a clone of the e2e repository, a fresh 2 MiB random file and one
README line, sent as a thin pack against the clone's HEAD, as `git push` sends it),
one seed each, and prints how many the package cage's policy did not allow, and why.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python bench/gitpush.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.registries import HOSTS, gitrepo
from tests.support.git_http import GIT_ENV, git

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.policy.engine import Policy
from agentcage.policy.leaks import unwrap
from agentcage.policy.types import Headers, Request


def make_policy() -> Policy:
    config = CageConfig.model_validate(
        {
            "name": "bench",
            "container": {"image": "docker.io/library/python:3.12-slim"},
            "domains": {"allow": ["github.com", "anthropic.com"]},
            "secret_injection": [{"env": "ANTHROPIC_API_KEY", "inject_to": ["anthropic.com"]}],
            "max_request_body": "64MiB",
            "rate_limit": False,
        },
        context=LoadContext(check_paths=False),
    )
    return Policy.from_config(config, {"ANTHROPIC_API_KEY": "sk-ant-api03-" + "x" * 90})


def pkg_policy() -> Policy:
    """The policy of tests/e2e's package cage (its rate limits off: many pushes in a row)."""
    config = CageConfig.model_validate(
        {
            "name": "pkg",
            "container": {"image": "docker.io/library/python:3.12-slim"},
            "domains": {"allow": list(HOSTS)},
            "rate_limit": False,
        },
        context=LoadContext(check_paths=False),
    )
    return Policy.from_config(config, {})


def push_body(repo: Path, new: str, old: str | None) -> bytes:
    revs = f"{new}\n" + (f"^{old}\n" if old else "")
    env = {**GIT_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    pack = subprocess.run(
        ["git", "pack-objects", "--revs", "--stdout", "--thin", "--delta-base-offset"],
        cwd=repo,
        input=revs.encode(),
        capture_output=True,
        check=True,
        env=env,
    ).stdout
    line = f"{old or '0' * 40} {new} refs/heads/main\0report-status side-band-64k\n".encode()
    return b"%04x" % (len(line) + 4) + line + b"0000" + pack


def commit(repo: Path, files: dict[str, bytes], env: dict[str, str] | None = None) -> str:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "change", cwd=repo, env=env)
    return git("rev-parse", "HEAD", cwd=repo)


def source_tree(rng: random.Random, size: int) -> dict[str, bytes]:
    words = ["widget", "frame", "render", "value", "count", "index", "state", "queue"]
    files: dict[str, bytes] = {}
    total, n = 0, 0
    while total < size:
        text = "".join(
            f"def {rng.choice(words)}_{n}_{i}(x):\n    return x.{rng.choice(words)} + {i}\n"
            for i in range(200)
        ).encode()
        files[f"src/mod_{n}.py"] = text
        total += len(text)
        n += 1
    return files


def bodies(tmp: Path) -> dict[str, bytes]:
    rng = random.Random(7)
    out = {}
    binary = tmp / "binary"
    git("init", "--quiet", str(binary))
    head = commit(binary, {"blob.bin": rng.randbytes(10 * 1024 * 1024)})
    out["10 MiB random binary"] = push_body(binary, head, None)
    text = tmp / "text"
    git("init", "--quiet", str(text))
    files = source_tree(rng, 2 * 1024 * 1024)
    first = commit(text, files)
    out["2 MiB source tree"] = push_body(text, first, None)
    name = sorted(files)[len(files) // 2]
    second = commit(text, {name: files[name].replace(b"+ 100\n", b"+ 101\n")})
    out["one-line thin push"] = push_body(text, second, first)
    return out


def timed(policy: Policy, request: Request, runs: int) -> tuple[float, str]:
    """The fastest of `runs` (the machine is shared: the others measure its noise)."""
    verdict = policy.check_request(request).verdict.value
    times = []
    for _ in range(runs):
        fresh = dataclasses.replace(request, body=bytes(memoryview(request.body)))
        start = time.perf_counter()
        policy.check_request(fresh)
        times.append(time.perf_counter() - start)
    return min(times) * 1000, verdict


def false_blocks(seeds: int) -> None:
    policy = pkg_policy()
    headers = Headers((("content-type", "application/x-git-receive-pack-request"),))
    refused: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gitpush-") as tmp:
        bare = gitrepo.write(Path(tmp))
        work = Path(tmp) / "work"
        git("clone", "--quiet", str(bare), str(work))
        base = git("rev-parse", "HEAD", cwd=work)
        readme = (work / "README.md").read_bytes()
        for seed in range(seeds):
            git("reset", "--quiet", "--hard", base, cwd=work)
            rng = random.Random(seed)
            # A commit time of its own too: the commit's and trees' ids differ every push.
            when = f"@{1_700_000_000 + rng.randrange(10**8)} +0000"
            new = commit(
                work,
                {"assets/build.bin": rng.randbytes(2 << 20), "README.md": readme + b"Changed.\n"},
                env={"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when},
            )
            body = push_body(work, new, base)
            path = f"/{gitrepo.REPO}/git-receive-pack"
            request = Request("POST", "https", gitrepo.HOST, 443, path, headers, body)
            decision = policy.check_request(request)
            if decision.verdict.value != "allow":
                refused.append(f"seed {seed}: {decision.verdict.value} {decision.reason}")
    took = time.perf_counter() - started
    print(f"not allowed: {len(refused)} of {seeds} e2e-like pushes ({took:.0f} s)")
    for line in refused[:20]:
        print("  " + line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--false-blocks", type=int, metavar="N", default=0)
    args = parser.parse_args()
    if args.false_blocks:
        false_blocks(args.false_blocks)
        return
    runs = args.runs
    policy = make_policy()
    headers = Headers((("content-type", "application/x-git-receive-pack-request"),))
    reader: Callable[..., object] = unwrap.read_pack
    print(f"{'push':<22} {'bytes':>10} {'before ms':>10} {'after ms':>9} {'ratio':>6}  verdict")
    with tempfile.TemporaryDirectory(prefix="bench-gitpush-") as tmp:
        for label, body in bodies(Path(tmp)).items():
            request = Request(
                "POST", "https", "github.com", 443, "/o/r.git/git-receive-pack", headers, body
            )
            unwrap.read_pack = lambda *a, **k: None  # type: ignore[assignment]
            before, old_verdict = timed(policy, request, runs)
            unwrap.read_pack = reader  # type: ignore[assignment]
            after, verdict = timed(policy, request, runs)
            print(
                f"{label:<22} {len(body):>10} {before:>10.1f} {after:>9.1f} "
                f"{after / before:>6.2f}  {old_verdict} -> {verdict}"
            )
            if label.startswith("10 MiB"):
                # The same data as a zlib stream of its own, which the engine already
                # inflated and scanned: what reading any compressed body costs.
                data = random.Random(7).randbytes(10 * 1024 * 1024)  # the file pushed
                alone = dataclasses.replace(request, body=zlib.compress(data, 1))
                cost, _ = timed(policy, alone, runs)
                print(f"{'  same data, zlib body':<22} {len(alone.body):>10} {'':>10} {cost:>9.1f}")


if __name__ == "__main__":
    main()
