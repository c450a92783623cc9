"""mitmproxy's option reads without deep copies of values that cannot change.

Every `ctx.options.name` (and `context.options.name`) goes through `_Option.current`,
which deep-copies the value, and, for an option left at its default, the `default`
property's deep copy before that: two trips through `copy.deepcopy`'s dispatch for a
`bool` or a `str`. mitmproxy's layers and addons read a few dozen options for each new
connection (each layer's `proxy_debug`, the next-layer and TLS addons' settings), a
few microseconds each. `copy.deepcopy` returns an immutable atomic value itself, so
for those `current` now returns the value as it is; a list, a dict or any other value
is still deep-copied, so no reader can change an option through what it was given.
"""

from __future__ import annotations

import copy
from typing import Any

from mitmproxy import optmanager

from agentcage.proxy.mitmproxy_pin import patches_mitmproxy

# The types `copy.deepcopy` hands back unchanged (its `_deepcopy_atomic`), of those an
# option can hold.
ATOMIC: frozenset[type] = frozenset({type(None), bool, int, float, complex, str, bytes})


@patches_mitmproxy
def install() -> None:
    optmanager._Option.current = _current  # type: ignore[method-assign]


def _current(self: optmanager._Option) -> Any:
    value = self._default if self.value is optmanager.unset else self.value
    if type(value) in ATOMIC:
        return value
    return copy.deepcopy(value)
