"""Proxy speed bench: agentcage's proxy against bare mitmdump and direct (run.py)."""
