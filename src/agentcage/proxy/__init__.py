"""The egress proxy: mitmproxy addons that hold every flow to the cage's policy.

This package is the only importer of mitmproxy. Each addon has one job and fails
closed: any exception inside a hook blocks the request (403) or closes the
WebSocket (1008), because mitmproxy itself logs addon errors and lets flows go on.
"""
