"""Replay the public agent-egress-bench corpus through the real proxy."""
