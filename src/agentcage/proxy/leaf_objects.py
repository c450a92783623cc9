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

Which certificate a connection gets (`TlsConfig.get_cert`) is remembered as well. For
every connection mitmproxy spells the SNI and the server's address as names for the
certificate (an IDNA encoding each, in pure Python), then looks them up in the store
by every wildcard form: about 45 us in the running proxy. The answer depends on those
names and on what the store holds, nothing else (the upstream's own certificate, when
mitmproxy is asked to copy it, is not remembered: such calls go to mitmproxy). So the
entry is kept per (SNI, the listener's address when there is no SNI, the server's
address) while the store holds the same certificates: a store that adds or drops one
empties what is kept.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from typing import Any

from mitmproxy import certs, ctx
from mitmproxy.addons import tlsconfig
from mitmproxy.proxy.context import Context
from OpenSSL import crypto

from agentcage.proxy.mitmproxy_pin import patches_mitmproxy

KEYS_KEPT = 8
# Names kept at most between store changes: many names can share one store entry (a
# wildcard or a default certificate), and each name is a connection's to choose.
NAMES_KEPT = 1024
_X509 = "_agentcage_x509"
_CHOSEN = "_agentcage_chosen_certs"
# (SNI, the listener's address without an SNI, the server's address)
Names = tuple[str | None, str | None, str | None]


@patches_mitmproxy
def install() -> None:
    certs.Cert.to_pyopenssl = _to_pyopenssl  # type: ignore[method-assign]
    tlsconfig.crypto = _CryptoView()  # type: ignore[attr-defined]
    tlsconfig.TlsConfig.get_cert = _remembered(tlsconfig.TlsConfig.get_cert)  # type: ignore[method-assign]


class _Chosen:
    """Entries chosen for each `Names`, valid while the store holds what it held."""

    def __init__(self, store: certs.CertStore) -> None:
        self.certs = store.certs
        self.size = len(store.certs)
        self.entries: dict[Names, certs.CertStoreEntry] = {}

    def current(self, store: certs.CertStore) -> bool:
        # The store adds an entry in place and drops one by making a new dict.
        return store.certs is self.certs and len(store.certs) == self.size


def _remembered(
    get_cert: Callable[..., certs.CertStoreEntry],
) -> Callable[..., certs.CertStoreEntry]:
    def chosen(self: tlsconfig.TlsConfig, conn_context: Context) -> certs.CertStoreEntry:
        server = conn_context.server
        if ctx.options.upstream_cert and server.certificate_list:
            return get_cert(self, conn_context)  # the upstream's names and organization too
        client = conn_context.client
        names: Names = (
            client.sni or None,
            None if client.sni else client.sockname[0],
            server.address[0] if server.address else None,
        )
        store = self.certstore
        kept: _Chosen | None = self.__dict__.get(_CHOSEN)
        if kept is None or not kept.current(store):
            kept = self.__dict__[_CHOSEN] = _Chosen(store)
        entry = kept.entries.get(names)
        if entry is None:
            entry = get_cert(self, conn_context)
            if kept.current(store):
                if len(kept.entries) >= NAMES_KEPT:
                    kept.entries.clear()
                kept.entries[names] = entry
        return entry

    return chosen


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
