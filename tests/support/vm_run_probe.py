"""`vm run` in the network namespace it is started in, then what it left behind there.

`python -m tests.support.vm_run_probe RUN_DIR MEMORY BOOT_SECONDS AFTER_JSON` runs
`agentcage.cage.vm.vm_run.run` as the VM's container would (the test starts it under
`unshare --net`, so the TAP and the NAT table are made in a namespace of its own),
prints a `VmmError` as the CLI would, and writes the namespace's links and nftables
tables once `run` has returned: what a failed or stopped VM leaves for the agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentcage.cage.vm.vm_run import run
from agentcage.errors import AgentcageError


def main() -> int:
    run_dir, memory, boot_seconds, after = sys.argv[1:5]
    try:
        code = run(Path(run_dir), Path(memory), float(boot_seconds))
    except AgentcageError as exc:
        print(f"error: {exc.message}", flush=True)
        code = 1
    links = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, check=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    names = [link["ifname"] for link in json.loads(links.stdout)]
    Path(after).write_text(json.dumps({"links": names, "tables": tables.stdout}))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
