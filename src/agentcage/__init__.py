"""agentcage: run AI agents in a cage whose only way out is an inspecting proxy."""

__version__ = "0.1.0"
