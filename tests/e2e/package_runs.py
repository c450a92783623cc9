"""Package-manager runs against the fake registries, as shell scripts for the agent.

Shared by tests/e2e/test_packages.py (in a cage) and bench/packages (in a cage and
directly). Each run starts cold: a fresh directory and an empty cache. `expected` names
the requests the registries must have answered for the run to count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.e2e.registries import CLIENT_MOUNT, Registries, apt, gitrepo, npm, pypi

WORK = "/work"  # the agent's writable directory (a tmpfs) and HOME
# (host, path) pairs; a run passes if every one was answered with a 2xx.
Expected = Callable[[Registries], set[tuple[str, str]]]


@dataclass(frozen=True)
class PackageRun:
    id: str
    script: str
    expected: Expected
    user: str = ""  # "0" for apt, which installs into the root file system
    hosts: tuple[str, ...] = ()


def _npm_tarballs(r: Registries) -> set[tuple[str, str]]:
    return {(npm.HOST, path) for path in r.npm.tarball_paths()}


def _npm_everything(r: Registries) -> set[tuple[str, str]]:
    return _npm_tarballs(r) | {(npm.HOST, path) for path in r.npm.packument_paths()}


def _python(r: Registries) -> set[tuple[str, str]]:
    pages = {(pypi.INDEX_HOST, f"/simple/{p.name}/") for p in r.pypi.projects}
    return pages | {(pypi.FILES_HOST, path) for path in r.pypi.latest_wheels()}


def _apt(r: Registries) -> set[tuple[str, str]]:
    release = (apt.HOST, f"/debian/dists/{apt.SUITE}/InRelease")
    return {release} | {(apt.HOST, deb.pool_path) for deb in r.debs}


def _git(r: Registries) -> set[tuple[str, str]]:
    repo = f"/{gitrepo.REPO}"
    return {(gitrepo.HOST, f"{repo}/{p}") for p in ("git-upload-pack", "git-receive-pack")}


_NPM = f"""set -e
rm -rf {WORK}/npm && mkdir -p {WORK}/npm && cd {WORK}/npm
cp {CLIENT_MOUNT}/npm/package.json {{files}} .
{{npm}} {{command}} --cache {WORK}/npm/.cache --no-fund --loglevel=warn
node -e 'for (const d of Object.keys(require("./package.json").dependencies)) require(d)'
echo "npm: $(find node_modules -name package.json -mindepth 2 -maxdepth 3 | wc -l) packages"
"""
_IMPORT_ALL = (
    "import importlib; [importlib.import_module(line.split('>=')[0].replace('-', '_')) "
    f"for line in open('{CLIENT_MOUNT}/pip/requirements.txt')]"
)
_APT_OPTIONS = (
    f"-o Dir::Etc::SourceList={CLIENT_MOUNT}/apt/sources.list "
    f"-o Dir::Etc::SourceParts={CLIENT_MOUNT}/apt/sources.list.d "
    # apt reads no CA variable from the environment.
    '-o Acquire::https::CaInfo="$SSL_CERT_FILE"'
)

# npm 10 (/usr/local/bin/npm) keeps its tunnels through a proxy open; Debian's npm 9
# opens a new CONNECT tunnel, so a new TLS connection, for every request.
NPM_CI = PackageRun(
    "npm-ci",
    _NPM.format(files=f"{CLIENT_MOUNT}/npm/package-lock.json", npm="npm", command="ci"),
    _npm_tarballs,
    hosts=(npm.HOST,),
)
NPM9_CI = PackageRun(
    "npm9-ci",
    _NPM.format(files=f"{CLIENT_MOUNT}/npm/package-lock.json", npm="/usr/bin/npm", command="ci"),
    _npm_tarballs,
    hosts=(npm.HOST,),
)
NPM_INSTALL = PackageRun(
    "npm-install",
    _NPM.format(files="", npm="npm", command="install"),
    _npm_everything,
    hosts=(npm.HOST,),
)


def _python_run(run_id: str, venv: str, create: str, install: str) -> PackageRun:
    script = f"""set -e
rm -rf {venv} {WORK}/{run_id}-cache
{create}
{install} -r {CLIENT_MOUNT}/pip/requirements.txt
{venv}/bin/python -c "{_IMPORT_ALL}"
"""
    return PackageRun(run_id, script, _python, hosts=(pypi.INDEX_HOST, pypi.FILES_HOST))


PIP = _python_run(
    "pip",
    f"{WORK}/venv",
    f"python3 -m venv {WORK}/venv",
    f"{WORK}/venv/bin/pip install --no-cache-dir --progress-bar off",
)
UV = _python_run(
    "uv",
    f"{WORK}/uvenv",
    f"uv venv --quiet --python /usr/bin/python3 {WORK}/uvenv",
    f"VIRTUAL_ENV={WORK}/uvenv uv pip install --cache-dir {WORK}/uv-cache",
)
APT = PackageRun(
    "apt",
    f"""set -e
apt-get clean
apt-get {_APT_OPTIONS} update
DEBIAN_FRONTEND=noninteractive apt-get {_APT_OPTIONS} install -y --no-install-recommends \\
  agentcage-e2e-tool
agentcage-e2e-hello
""",
    _apt,
    user="0",
    hosts=(apt.HOST,),
)
GIT = PackageRun(
    "git",
    f"""set -e
rm -rf {WORK}/widgets
git clone --quiet https://{gitrepo.HOST}/{gitrepo.REPO} {WORK}/widgets
cd {WORK}/widgets
git config user.email agent@example.invalid && git config user.name agent
head -c 2097152 /dev/urandom > assets/build.bin
echo "Changed in the cage." >> README.md
git add -A && git commit --quiet -m "a change from the cage"
git push --quiet origin HEAD:{gitrepo.BRANCH}
echo "pushed $(git rev-parse HEAD)"
""",
    _git,
    hosts=(gitrepo.HOST,),
)
# One representative run per tool; FULL_RUNS adds the rest (AGENTCAGE_E2E_PACKAGES=full).
REPRESENTATIVE = (NPM_CI, PIP, UV, APT, GIT)
FULL_RUNS = (*REPRESENTATIVE, NPM9_CI, NPM_INSTALL)
