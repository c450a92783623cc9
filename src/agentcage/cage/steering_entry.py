"""How the units run default deny's setup (steering.py): `nsenter` into the cage's namespaces.

The proxy's and the agent's units run it from `ExecStartPost=`, on the host that runs
the cage (remote targets included), with nothing but util-linux, `sh` and `grep`:

1. the PIDs of the proxy container and of the container to steer (the same one for the
   proxy's setup) come from the PID files their `podman run --pidfile` wrote (see
   `pid_file` below), each accepted only if its process is a child of the `conmon` of
   the container of that name; anything else (no file, a PID that no longer runs, a
   stale file whose PID now belongs to another process) fails the step, and a failed
   step leaves the cage closed. Until this, one `podman container inspect` asked for
   both: a Podman process on the path of every `cage create`, twice (the proxy's
   unit, then the agent's; the agent's step took 0.113 s median with it, 0.054 s
   without, bench/cages/steering_step.py);
2. `nsenter` joins the proxy container's mount namespace (its image has the Python,
   `nft` and `ip`; the agent's image need not), the target's network namespace and,
   when the proxy's user namespace is not the caller's (a rootless cage, or one with
   a user namespace of its own), that user namespace first, becoming its uid 0;
3. the image's `setpriv` (util-linux, in every Debian image) keeps only CAP_NET_ADMIN
   in the bounding set, clears the inheritable set and sets no-new-privileges before
   the image's Python runs: the privilege the one-shot container had
   (`--cap-drop=all --cap-add=net_admin --user=0:0 --security-opt=no-new-privileges`);
4. the Python runs isolated (`-I`: no current directory, user site or PYTHON*
   variables on its path), with a fixed PATH for `nft` and `ip`.

The words after the script are `sh -c`'s positional parameters: the directory of the PID
files (systemd's `%t`), the two container names, then the Python's own arguments,
`-m agentcage.cage.steering ROLE ...`, which the microVM guest reads back from the unit
(vm/guest_roles.py) and runs itself.

Before this, each setup was a one-shot `podman run` of the proxy image joined to the
target's network namespace: a container's creation, start and removal, on the path of
every `cage create` (docs/cages.md, "What the targets need next").
"""

from __future__ import annotations

from typing import Literal

from agentcage.cage.contract import PYTHON, STEERING_MODULE
from agentcage.cage.topology import Topology
from agentcage.cage.unit import Specifiers
from agentcage.config.constants import DENY_PORT

SHELL = "/bin/sh"
# In the proxy container's mount namespace: util-linux's, from the runtime image.
SETPRIV = "/usr/bin/setpriv"
# For nsenter on the host, and for `nft` and `ip` in the image (steering.py runs them).
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# $0 of the script: what `ps` and the journal show for it.
NAME = "agentcage-steering"
# The one capability the setup keeps (the one-shot container's `--cap-add=net_admin`).
KEPT = ("--inh-caps=-all", "--bounding-set=-all,+net_admin", "--no-new-privs")


# Sets $user: `--user` for nsenter when the proxy's user namespace is not the caller's.
USER_NAMESPACE = (
    'user=; [ "$(readlink /proc/$proxy/ns/user)" = "$(readlink /proc/self/ns/user)" ] '
    "|| user=--user; "
)


def enter(names: int, privileges: str, program: str) -> str:
    """The entry itself, once $proxy, $target and $user are set: drop the `names` leading
    words, then into the namespaces (what `cage verify`'s script shares, verify_network.py)."""
    return (
        f"shift {names}; "
        f'exec env -i PATH={SEARCH_PATH} nsenter --target="$proxy" $user --mount '
        f'--net="/proc/$target/ns/net" {SETPRIV} {privileges} {program}'
    )


# Where each steered container's `podman run --pidfile` writes its PID: the runtime
# directory (root's /run, a user's $XDG_RUNTIME_DIR), writable by the cage's owner only.
PID_DIR = Specifiers("%t")


def pid_file(container: str) -> Specifiers:
    """`--pidfile=` of a steered container: PID_DIR/NAME.pid, as the setup reads it back.

    A container name is a checked name (topology.py: letters, digits and dashes), never
    a `%`, so no specifier but PID_DIR's is live.
    """
    return Specifiers(f"--pidfile={PID_DIR}/{container}.pid")


# $1: the PID files' directory, $2: the proxy container (whose mount and user namespaces),
# $3: the container to steer (whose network namespace). `pid_of DIR NAME` sets $p from
# DIR/NAME.pid (written without a newline, hence `|| [ -n "$p" ]`) if that PID's parent
# is a `conmon` with NAME among its arguments (`-n NAME`): Podman leaves the file behind
# when the container goes, so a PID read from it is only trusted while it is the
# container's. Each PID must be a number above 0, or the step fails: `-` in
# `ExecStartPost=` keeps a failed step from failing the unit, and the cage stays closed.
# /proc/self in USER_NAMESPACE's comparison is the `readlink` itself, so it says whether
# the proxy lives in another user namespace. One line: unit values hold no newline.
_PID_OF = (
    'pid_of() { p=; c=0; comm=; { IFS= read -r p || [ -n "$p" ]; } < "$1/$2.pid" '
    '&& [ "$p" -gt 0 ] && while read -r k v; do [ "$k" != PPid: ] || c=$v; done '
    '< "/proc/$p/status" && [ "$c" -gt 0 ] && read -r comm < "/proc/$c/comm" '
    '&& [ "$comm" = conmon ] && grep -qzxF -e "$2" "/proc/$c/cmdline"; }; '
)


def pid_file_script(privileges: str, program: str) -> str:
    """The `sh -c` text: both PIDs from their containers' PID files (no Podman process),
    into the namespaces, then `setpriv PRIVILEGES PROGRAM`."""
    return (
        f'set -e; {_PID_OF}pid_of "$1" "$2" || exit 1; proxy=$p; '
        f'pid_of "$1" "$3" || exit 1; target=$p; {USER_NAMESPACE}{enter(3, privileges, program)}'
    )


SCRIPT = pid_file_script(" ".join(KEPT), f'{PYTHON} -I "$@"')


def steering_command(
    topology: Topology, role: Literal["proxy", "agent"], own_ports: tuple[int, ...]
) -> tuple[str, ...]:
    """The `ExecStartPost=` argv that sets up default deny in `role`'s network namespace.

    `own_ports`: the proxy's listening ports, which its redirects leave alone.
    """
    args: tuple[str, ...] = (topology.proxy_ip,)
    if role == "proxy":
        args += tuple(str(port) for port in (DENY_PORT, *own_ports))
    return (
        SHELL, "-c", SCRIPT, NAME, PID_DIR, topology.container("proxy"), topology.container(role),
        "-m", STEERING_MODULE, role, *args,
    )  # fmt: skip
