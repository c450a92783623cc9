"""SIGHUP: the config is checked in a child while the proxy's loop keeps serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentcage.proxy.checked_config import ConfigCheck
from agentcage.proxy.server import Reloads

CONFIG = '{"name": "NAME", "container": {"image": "localhost/agent:1"}}'


def test_the_loop_runs_while_a_reload_checks_and_a_sighup_meanwhile_asks_for_one_more(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cage.json"
    path.write_text(CONFIG.replace("NAME", "first"))
    events: list[str] = []

    def apply(check: ConfigCheck) -> None:
        events.append(f"applied {check.result().config.name}")

    async def main() -> None:
        reloads = Reloads(path, apply)
        reloads.ask()
        await asyncio.sleep(0)
        events.append("served")  # the check runs in a child, the loop does not wait for it
        path.write_text(CONFIG.replace("NAME", "second"))
        reloads.ask()  # during the first check: one more check after it
        reloads.ask()  # and no third
        while len(events) < 3:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)

    asyncio.run(asyncio.wait_for(main(), timeout=60))
    # The first check may read the file before or after it changed; the last one after.
    assert events[0] == "served" and len(events) == 3 and events[2] == "applied second"
