"""The agent-side certificate and key are converted to pyOpenSSL once, not per connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from mitmproxy import certs
from mitmproxy.addons import tlsconfig

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
