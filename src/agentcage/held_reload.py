"""A SIGHUP that arrives between READY=1 and the sidecar's own handler.

Both sidecars say READY=1 before their engines load, and from then on `secret set`
or `domain add` may send SIGHUP. Its default action ends the process, and in a
microVM guest nothing restarts it, so until the sidecar installs its handler the
signal is only noted here and the reload is done once the sidecar serves.
"""

from __future__ import annotations

import signal


class HeldReload:
    """Installs itself as the SIGHUP handler; `asked` tells whether one came."""

    def __init__(self) -> None:
        self.asked = False
        signal.signal(signal.SIGHUP, self._ask)

    def _ask(self, _signum: int, _frame: object) -> None:
        self.asked = True
