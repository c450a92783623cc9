"""How the units run default deny's setup (steering.py): `nsenter` into the cage's namespaces.

The proxy's and the agent's units run it from `ExecStartPost=`, on the host that runs
the cage (remote targets included), with nothing but `podman`, util-linux and `sh`:

1. one `podman container inspect` gives the PIDs of the proxy container and of the
   container to steer (the same one for the proxy's setup). A PID of 0 (a container
   that is not running) fails the step, and a failed step leaves the cage closed;
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

The words after the script are `sh -c`'s positional parameters: the two container
names, then the Python's own arguments, `-m agentcage.cage.steering ROLE ...`, which
the microVM guest reads back from the unit (vm/guest_roles.py) and runs itself.

Before this, each setup was a one-shot `podman run` of the proxy image joined to the
target's network namespace: a container's creation, start and removal, on the path of
every `cage create` (docs/cages.md, "What the targets need next").
"""

from __future__ import annotations

from typing import Literal

from agentcage.cage.contract import PODMAN, PYTHON, STEERING_MODULE
from agentcage.cage.topology import Topology
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


# $1: the proxy container (whose mount and user namespaces), $2: the container to steer
# (whose network namespace); one `inspect` prints both PIDs, one a line. Each must be a
# number above 0, or the step fails: `-` in `ExecStartPost=` keeps a failed step from
# failing the unit, and the cage stays closed. /proc/self in the comparison is the
# `readlink` itself, so it says whether the proxy lives in another user namespace.
# One line: unit values hold no newline (unit.py).
def entry_script(privileges: str, program: str) -> str:
    """The `sh -c` text: into the namespaces as above, then `setpriv PRIVILEGES PROGRAM`."""
    return (
        f'set -e; pids=$({PODMAN} container inspect --format={{{{.State.Pid}}}} "$1" "$2"); '
        "proxy=${pids%%[!0-9]*}; target=${pids##*[!0-9]}; "
        '[ "$proxy" -gt 0 ] && [ "$target" -gt 0 ] || exit 1; '
        f"{USER_NAMESPACE}{enter(privileges, program)}"
    )


# Sets $user: `--user` for nsenter when the proxy's user namespace is not the caller's.
USER_NAMESPACE = (
    'user=; [ "$(readlink /proc/$proxy/ns/user)" = "$(readlink /proc/self/ns/user)" ] '
    "|| user=--user; "
)


def enter(privileges: str, program: str) -> str:
    """The entry itself, once $proxy, $target and $user are set and "$1" and "$2" are
    the two names (dropped): what `cage verify`'s script shares (verify_network.py)."""
    return (
        "shift 2; "
        f'exec env -i PATH={SEARCH_PATH} nsenter --target="$proxy" $user --mount '
        f'--net="/proc/$target/ns/net" {SETPRIV} {privileges} {program}'
    )


SCRIPT = entry_script(" ".join(KEPT), f'{PYTHON} -I "$@"')


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
        SHELL, "-c", SCRIPT, NAME, topology.container("proxy"), topology.container(role),
        "-m", STEERING_MODULE, role, *args,
    )  # fmt: skip
