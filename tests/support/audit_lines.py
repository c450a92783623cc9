"""Reading a live audit log the way `agentcage audit` does: whole lines only.

The writer appends each line with one `os.write`, but a reader racing it can see
the first bytes of a line before the rest; a line without its newline is still
being written, so it is left for the next read rather than parsed torn.
"""

from __future__ import annotations

import json
from typing import Any


def whole_records(text: str) -> list[dict[str, Any]]:
    lines = text.split("\n")[:-1]  # the last piece has no newline yet (or is empty)
    return [json.loads(line) for line in lines if line.strip()]
