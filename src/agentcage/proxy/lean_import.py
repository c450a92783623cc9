"""The packages `proxy run` registers with their `__init__` deferred (lean_package.py).

Called first, before anything imports them:

* `mitmproxy.addons`, whose `__init__` imports all of mitmdump's default addons (the
  onboarding app with Flask, proxy authentication with ldap3 and passlib, playback,
  export...). Our chain imports the eight it runs (proxy/server.py): the proxy starts
  about a third faster and holds ~290 fewer modules.
* `ruamel.yaml`, which mitmproxy's option manager imports to read and write option
  files, which `proxy run` never does: 1.6 MiB less in every cage's proxy. The cage's
  config is JSON (config/load.py reads it without YAML); a YAML config given by hand
  loads ruamel.yaml when it is read, as before.
"""

from __future__ import annotations

from agentcage.lean_package import defer_init


def defer_unused_packages() -> None:
    defer_init("mitmproxy.addons")
    defer_init("ruamel.yaml")
