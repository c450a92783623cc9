"""The agent-side certificate and key are converted to pyOpenSSL once, not per connection;
the certificate chosen for a connection's names is looked up once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from mitmproxy import certs
from mitmproxy.addons import tlsconfig
from mitmproxy.proxy.context import Context
from mitmproxy.test import taddons, tflow

from agentcage.cage.ca import KEY_AND_CERT, make_ca
from agentcage.proxy import leaf_objects


@pytest.fixture(autouse=True)
def installed() -> None:
    leaf_objects.install()


@pytest.fixture
def store(tmp_path: Path) -> certs.CertStore:
    key, cert = make_ca("unit")
    (tmp_path / KEY_AND_CERT).write_bytes(key + cert)
    return certs.CertStore.from_store(tmp_path, "mitmproxy", 2048)


def test_the_certificate_for_a_name_is_converted_once(store: certs.CertStore) -> None:
    entry = store.get_cert("example.com", ["example.com"])
    first = entry.cert.to_pyopenssl()
    # mitmproxy's own method makes a new object (DER out and back) on every call
    assert entry.cert.to_pyopenssl() is first
    assert store.get_cert("example.com", ["example.com"]).cert.to_pyopenssl() is first
    assert first.to_cryptography() == entry.cert._cert
    other = store.get_cert("other.example", ["other.example"]).cert
    assert other.to_pyopenssl() is not first
    assert other.to_pyopenssl().get_subject().CN == "other.example"


def test_a_cert_given_another_certificate_is_converted_again(store: certs.CertStore) -> None:
    cert = store.get_cert("example.com", ["example.com"]).cert
    before = cert.to_pyopenssl()
    cert.set_state(store.get_cert("other.example", ["other.example"]).cert.to_pem())
    assert cert.to_pyopenssl() is not before
    assert cert.to_pyopenssl().get_subject().CN == "other.example"


def test_tls_config_gets_each_key_object_converted_once(store: certs.CertStore) -> None:
    convert = tlsconfig.crypto.PKey.from_cryptography_key
    key = store.default_privatekey
    made = convert(key)
    assert convert(key) is made
    assert made.to_cryptography_key().private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    another = ec.generate_private_key(ec.SECP256R1())
    assert convert(another) is not made
    assert tlsconfig.crypto.get_elliptic_curve("prime256v1").name == "prime256v1"


def test_only_a_few_keys_are_kept() -> None:
    convert = tlsconfig.crypto.PKey.from_cryptography_key
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(leaf_objects.KEYS_KEPT + 1)]
    first = convert(keys[0])
    for key in keys[1:]:
        convert(key)
    assert convert(keys[-1]) is convert(keys[-1])
    assert convert(keys[0]) is not first  # the oldest was dropped


def test_a_deprecated_name_is_reported_where_it_is_used() -> None:
    # mitmproxy's options hook looks up `crypto.get_elliptic_curve`, which pyOpenSSL
    # deprecates: the warning must name that code, not the view in between.
    with pytest.warns(DeprecationWarning, match="get_elliptic_curve") as caught:
        curve = tlsconfig.crypto.get_elliptic_curve  # type: ignore[attr-defined]
    assert callable(curve)
    assert [w.filename for w in caught] == [__file__]


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[tlsconfig.TlsConfig, taddons.context]]:
    key, cert = make_ca("unit")
    (tmp_path / KEY_AND_CERT).write_bytes(key + cert)
    addon = tlsconfig.TlsConfig()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, confdir=str(tmp_path))
        yield addon, tctx


def _context(tctx: taddons.context, sni: str | None, server: str | None = "203.0.113.7") -> Context:
    client = tflow.tclient_conn()
    client.sni = sni
    client.sockname = ("10.213.0.3", 8080)
    made = Context(client, tctx.options)
    made.server.address = (server, 443) if server else None
    return made


def _names(entry: certs.CertStoreEntry) -> set[str]:
    return {str(name.value) for name in entry.cert.altnames}


def test_the_certificate_chosen_for_a_connection_is_remembered(
    tls: tuple[tlsconfig.TlsConfig, taddons.context], monkeypatch: pytest.MonkeyPatch
) -> None:
    addon, tctx = tls
    first = addon.get_cert(_context(tctx, "api.example.com"))
    assert _names(first) == {"api.example.com", "203.0.113.7"}
    # The call that made the certificate changed the store; the next one is kept.
    assert addon.get_cert(_context(tctx, "api.example.com")) is first
    calls: list[object] = []
    looked_up = addon.certstore.get_cert

    def counted(*args: Any, **kwargs: Any) -> certs.CertStoreEntry:
        calls.append(args)
        return looked_up(*args, **kwargs)

    monkeypatch.setattr(addon.certstore, "get_cert", counted)
    assert addon.get_cert(_context(tctx, "api.example.com")) is first
    assert addon.get_cert(_context(tctx, "api.example.com")) is first
    assert calls == []
    other = addon.get_cert(_context(tctx, "other.example.com"))
    assert _names(other) == {"other.example.com", "203.0.113.7"}
    elsewhere = addon.get_cert(_context(tctx, "api.example.com", server="198.51.100.1"))
    assert _names(elsewhere) == {"api.example.com", "198.51.100.1"}
    no_sni = addon.get_cert(_context(tctx, None))
    assert _names(no_sni) == {"10.213.0.3", "203.0.113.7"}
    no_server = addon.get_cert(_context(tctx, "api.example.com", server=None))
    assert _names(no_server) == {"api.example.com"}
    assert addon.get_cert(_context(tctx, "api.example.com")) is first


def test_a_store_that_drops_a_certificate_is_asked_again(
    tls: tuple[tlsconfig.TlsConfig, taddons.context],
) -> None:
    addon, tctx = tls
    first = addon.get_cert(_context(tctx, "api.example.com"))
    assert addon.get_cert(_context(tctx, "api.example.com")) is first
    addon.certstore.certs = {}  # dropped, as the store's `expire` replaces the dict
    again = addon.get_cert(_context(tctx, "api.example.com"))
    assert again is not first
    assert _names(again) == {"api.example.com", "203.0.113.7"}
    assert addon.get_cert(_context(tctx, "api.example.com")) is again


def test_a_copied_upstream_certificate_is_never_remembered(
    tls: tuple[tlsconfig.TlsConfig, taddons.context],
) -> None:
    addon, tctx = tls
    tctx.configure(addon, upstream_cert=True)
    upstream = addon.certstore.get_cert("upstream.example.com", ["upstream.example.com"]).cert
    made = _context(tctx, "api.example.com")
    made.server.certificate_list = [upstream]
    for _ in range(3):
        assert "upstream.example.com" in _names(addon.get_cert(made))
    made.server.certificate_list = []
    assert "upstream.example.com" not in _names(addon.get_cert(made))


def test_names_sharing_one_certificate_are_kept_in_bounds(
    tls: tuple[tlsconfig.TlsConfig, taddons.context], monkeypatch: pytest.MonkeyPatch
) -> None:
    addon, tctx = tls
    monkeypatch.setattr(leaf_objects, "NAMES_KEPT", 4)
    # One entry for every name, as a default certificate would be.
    shared = addon.certstore.get_cert("shared.example", ["shared.example"])
    monkeypatch.setattr(addon.certstore, "get_cert", lambda *args, **kwargs: shared)
    for n in range(10):
        assert addon.get_cert(_context(tctx, f"n{n}.example")) is shared
    kept = addon.__dict__[leaf_objects._CHOSEN]
    assert 0 < len(kept.entries) <= 4
