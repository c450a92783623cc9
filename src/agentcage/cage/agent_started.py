"""The agent unit's last `ExecStartPost=`: its start ends once the agent's command runs.

The agent's container runs an init (`RunInit=`, Podman's catatonit) that forks and then
execs the configured command. conmon says READY=1 as soon as that init has started, so
systemd would call the unit started while the exec may still fail a moment later (a
command that does not exist in the image): `systemctl start` then returned success,
`cage create` reported a running cage, and the unit failed just after, unseen and not
rolled back. Whether create saw the failure depended on how long the steps before the
answer happened to take.

This step holds the start (systemd keeps the unit "activating" while it runs) until one
of two things is true, reading only /proc, so no Podman process is on the path:

* a child of the container's init no longer has the init's name: the exec happened and
  the command runs. The step exits, and the start succeeds.
* the init is gone (or a zombie): the command could not start, or it already ended. The
  step then waits until systemd has reaped conmon ($MAINPID), so the unit's result (failed
  for a non-zero exit, inactive for a clean one) is settled before `systemctl start`
  returns and create reads it (running.py).

$MAINPID is conmon (`--sdnotify=conmon`); the container's init is conmon's only child.
A kernel without /proc/PID/task/PID/children, or no $MAINPID, ends the step at once
(the old behaviour). Each wait is bounded (about 10 s); the unit's start timeout bounds
the whole start anyway. `-`: the step only waits, it never fails the unit itself.
"""

from __future__ import annotations

from agentcage.cage.steering_entry import SHELL

# $0 of the script: what `ps` and the journal show for it.
NAME = "agentcage-agent-started"
TICK = "0.01"
TICKS = 1000

# One line: unit values hold no newline (unit.py). `settle` waits for systemd to reap
# conmon, then ends the step; a child whose name cannot be read has just exited.
SCRIPT = (
    f'settle() {{ n=0; while [ -e "/proc/$c" ] && [ "$n" -lt {TICKS} ]; do sleep {TICK}; '
    "n=$((n + 1)); done; exit 0; }; "
    'c="$MAINPID"; [ -n "$c" ] && [ -r "/proc/$c/task/$c/children" ] || exit 0; '
    # The file has no newline, so `read` returns 1 even when it read the PID.
    'read -r init rest < "/proc/$c/task/$c/children"; [ -n "$init" ] || settle; '
    'own=$(cat "/proc/$init/comm" 2>/dev/null) && [ -n "$own" ] || settle; '
    f'n=0; while [ "$n" -lt {TICKS} ]; do '
    'state=; while read -r key value; do [ "$key" = State: ] && state=$value && break; '
    'done 2>/dev/null < "/proc/$init/status"; '
    'case "$state" in ""|Z*|X*) settle;; esac; '
    'for k in $(cat "/proc/$init/task/$init/children" 2>/dev/null); do '
    'name=$(cat "/proc/$k/comm" 2>/dev/null) || continue; '
    '[ -n "$name" ] && [ "$name" != "$own" ] && exit 0; done; '
    f"sleep {TICK}; n=$((n + 1)); done"
)


def started_step() -> tuple[str, ...]:
    """The agent unit's `ExecStartPost=` argv (without the `-` prefix)."""
    return (SHELL, "-c", SCRIPT, NAME)
