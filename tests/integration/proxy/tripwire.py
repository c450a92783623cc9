"""A custom inspector for the tests: raises on /boom, flags /flagme, ignores the rest."""

from agentcage.policy.types import Finding, Verdict


class Tripwire:
    name = "tripwire"

    def inspect_request(self, request):
        if request.path.startswith("/boom"):
            raise RuntimeError("tripwire exploded (this message may quote the payload)")
        if request.path.startswith("/flagme"):
            return Finding(self.name, Verdict.FLAG, "path asked to be flagged", ("flagme",))
        return None
