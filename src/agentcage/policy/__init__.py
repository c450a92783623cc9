"""The inspection engine: pure Python, no mitmproxy, no sockets, no subprocesses.

The proxy turns flows into `Request`/`Frame` values, asks the engine for a
`Decision`, and turns the decision back into a flow. Detection quality and speed
live here.
"""
