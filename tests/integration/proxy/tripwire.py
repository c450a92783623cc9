"""A custom inspector for the tests: raises on /boom, flags /flagme, ignores the rest.

/raise/<Name> raises that exception type (SystemExit, KeyboardInterrupt,
GeneratorExit, CancelledError, or Escaping, a bare BaseException subclass); so does
a WebSocket frame whose payload is `raise:<Name>`.
"""

import asyncio

from agentcage.policy.types import Finding, Verdict


class Escaping(BaseException):
    pass


RAISES = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
    "CancelledError": asyncio.CancelledError,
    "Escaping": Escaping,
}


class Tripwire:
    name = "tripwire"

    def inspect_request(self, request):
        if request.path.startswith("/boom"):
            raise RuntimeError("tripwire exploded (this message may quote the payload)")
        if request.path.startswith("/raise/"):
            raise RAISES[request.path.split("/")[2]]()
        if request.path.startswith("/flagme"):
            return Finding(self.name, Verdict.FLAG, "path asked to be flagged", ("flagme",))
        return None

    def inspect_frame(self, frame):
        if frame.payload.startswith(b"raise:"):
            raise RAISES[frame.payload[6:].decode()]()
        return None
