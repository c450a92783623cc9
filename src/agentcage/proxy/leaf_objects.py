"""The agent-side certificate and key as pyOpenSSL objects, made once, not per connection.

mitmproxy's `TlsConfig.tls_start_client` converts the certificate for the name
(`Cert.to_pyopenssl`: DER out, DER parsed back) and the leaf key
(`PKey.from_cryptography_key`: serialized and loaded again) for every TLS connection
from the agent, though both come from the certificate store's cache and are the same
objects each time: about 70 us per connection with the cage's P-256 key, 130 us with
an RSA 2048 one, on the test machine. Here each conversion is kept with what it was
made from: the pyOpenSSL certificate on the `Cert` (made again if the `Cert` is given
another certificate), the pyOpenSSL key by the key object (a few keys at most: the
store signs every leaf with one). OpenSSL takes its own reference when a connection
uses them, and nothing here changes them afterwards.

Only mitmproxy's TLS addon sees the cached key: its module's `crypto` is replaced by
a view of pyOpenSSL's that differs in `PKey.from_cryptography_key` alone.
"""

from __future__ import annotations

import types
import warnings
from typing import Any

from mitmproxy import certs
from mitmproxy.addons import tlsconfig
from OpenSSL import crypto

from agentcage.proxy.mitmproxy_pin import patches_mitmproxy

KEYS_KEPT = 8
_X509 = "_agentcage_x509"


@patches_mitmproxy
def install() -> None:
    certs.Cert.to_pyopenssl = _to_pyopenssl  # type: ignore[method-assign]
    tlsconfig.crypto = _CryptoView()  # type: ignore[attr-defined]


def _to_pyopenssl(self: certs.Cert) -> crypto.X509:
    made: tuple[object, crypto.X509] | None = getattr(self, _X509, None)
    if made is None or made[0] is not self._cert:
        made = (self._cert, crypto.X509.from_cryptography(self._cert))
        setattr(self, _X509, made)
    return made[1]


class _KeyCache:
    """`PKey.from_cryptography_key`, remembered for the last KEYS_KEPT key objects."""

    def __init__(self) -> None:
        # id -> (the key itself, so the id cannot be reused while kept; its PKey)
        self._made: dict[int, tuple[object, crypto.PKey]] = {}

    def from_cryptography_key(self, key: Any) -> crypto.PKey:
        made = self._made.get(id(key))
        if made is None or made[0] is not key:
            made = (key, crypto.PKey.from_cryptography_key(key))
            self._made[id(key)] = made
            while len(self._made) > KEYS_KEPT:
                del self._made[next(iter(self._made))]
        return made[1]


class _CryptoView(types.ModuleType):
    """pyOpenSSL's `crypto` module, but `PKey` converts each key object once."""

    def __init__(self) -> None:
        super().__init__(crypto.__name__)
        self.PKey = _KeyCache()

    def __getattr__(self, name: str) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(crypto, name)
        # pyOpenSSL warns of a deprecated name where it is looked up, which is here; the
        # code that asked for it (mitmproxy's) is the caller's frame.
        for warning in caught:
            warnings.warn(warning.message, warning.category, stacklevel=2)
        return value
