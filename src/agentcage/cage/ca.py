"""The cage's own certificate authority, made once per cage.

The proxy signs a certificate for each host the agent visits with this CA; the agent
trusts only its public certificate. Files follow mitmproxy's confdir layout so the proxy
loads them as they are: `mitmproxy-ca.pem` (key + certificate, 0600, proxy only) and
`mitmproxy-ca-cert.pem` (certificate). The agent gets a copy of the certificate in a
separate directory, so the key is never mounted into the agent.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from agentcage.cage.state import write_atomic

KEY_AND_CERT = "mitmproxy-ca.pem"
CERT = "mitmproxy-ca-cert.pem"
VALIDITY = datetime.timedelta(days=3650)


def make_ca(cage: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) for a new CA named after the cage."""
    # Here, not at the top: every cage command imports this module, and only a create
    # makes a CA (cryptography's x509 takes 30 ms to load here).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "agentcage"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"agentcage {cage} CA"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def ensure_ca(cage: str, ca_dir: Path, public_cert: Path) -> None:
    """Create the CA in `ca_dir` unless it exists; (re)write the agent's public copy."""
    ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    combined = ca_dir / KEY_AND_CERT
    if not combined.is_file():
        key_pem, cert_pem = make_ca(cage)
        write_atomic(combined, key_pem + cert_pem, 0o600)
        write_atomic(ca_dir / CERT, cert_pem, 0o644)
    cert_pem = (ca_dir / CERT).read_bytes()
    public_cert.parent.mkdir(parents=True, exist_ok=True)
    public_cert.parent.chmod(0o755)
    write_atomic(public_cert, cert_pem, 0o644)
