"""Built-in formats for key files, connection strings, tokens and secrets by name.

Private keys (PEM, OpenSSH, PGP, PuTTY, and key bodies without their armour),
database URLs with a password, JSON Web Tokens (flagged; blocked when their
claims say whose they are) and `NAME=value` lines of env files and YAML configs.
See `pattern.py` for the rules every format follows.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from agentcage.policy.formats.documentation import filler, never, token_example
from agentcage.policy.formats.pattern import START, CredentialPattern, make
from agentcage.policy.types import Verdict

# A line break in a key file, raw or JSON-escaped once or twice.
_BREAK = rb"(?:\\{1,3}[rn]|[\r\n \t])"
_B64 = rb"[A-Za-z0-9+/]"
# The signature may be short or empty: a token with a signature its algorithm
# cannot have is a stand-in (`_jwt_example`), not something else.
_JWT = START + rb"eyJ[A-Za-z0-9_-]{10,4000}\.eyJ[A-Za-z0-9_-]{10,8000}\.[A-Za-z0-9_-]{0,1000}"
# The shortest signature each algorithm family makes, base64url: HMAC-SHA256, RSA
# with a 1024-bit key, ECDSA P-256, Ed25519.
_SIGNATURE_CHARS = {"HS": 43, "RS": 171, "PS": 171, "ES": 86, "Ed": 86}
_UNKNOWN_ALG_SIGNATURE = 20


def _jwt_part(token: bytes, index: int) -> dict[str, object]:
    try:
        part = token.split(b".")[index]
        decoded = json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _jwt_claims(token: bytes) -> dict[str, object]:
    return _jwt_part(token, 1)


def _jwt_example(token: bytes) -> bool:
    """The token the JWT debugger and countless tutorials show, and its variants; and
    a token no verifier accepts: unsigned, or with a signature shorter than its
    algorithm makes (`.fakesig`)."""
    claims = _jwt_claims(token)
    if claims.get("sub") == "1234567890" or claims.get("iat") == 1516239022:
        return True
    alg = str(_jwt_part(token, 0).get("alg", ""))
    signature = token.rsplit(b".", 1)[-1]
    return alg.lower() == "none" or len(signature) < _SIGNATURE_CHARS.get(
        alg[:2], _UNKNOWN_ALG_SIGNATURE
    )


def _supabase_service(token: bytes) -> bool:
    claims = _jwt_claims(token)
    return claims.get("role") == "service_role" and "supabase" in str(claims.get("iss", ""))


def _kubernetes(token: bytes) -> bool:
    claims = _jwt_claims(token)
    return claims.get("iss") == "kubernetes/serviceaccount" or "kubernetes.io" in claims


_PLACEHOLDER_WORDS = {
    b"password",
    b"passwd",
    b"pass",
    b"pwd",
    b"secret",
    b"changeme",
    b"example",
    b"postgres",
    b"mysql",
    b"root",
    b"admin",
    b"user",
    b"guest",
    b"test",
    b"dev",
    b"local",
    b"mysecretpassword",
}
_LOCAL_HOSTS = re.compile(rb"(?i:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]|host\.docker\.internal)")
_DB_URL = re.compile(rb"//(?P<u>[^:]*):(?P<p>[^@]*)@(?P<h>[^:/?#]*)")
_TEMPLATE = re.compile(rb"[$<>{}%*]|\.\.\.")


def _db_example(url: bytes) -> bool:
    """Development and placeholder credentials: a password that is a word everyone
    uses or a template, or a database on this machine (unreachable from outside)."""
    parts = _DB_URL.search(url)
    if parts is None:
        return True
    password = parts["p"]
    bare = password.lower().rstrip(b"0123456789!")
    return (
        bare in _PLACEHOLDER_WORDS
        or password == parts["u"]
        or len(password) < 6
        or _TEMPLATE.search(password) is not None
        or _LOCAL_HOSTS.fullmatch(parts["h"]) is not None
    )


_CLASSES = (re.compile(rb"[a-z]"), re.compile(rb"[A-Z]"), re.compile(rb"[0-9]"))


def strong(value: bytes) -> bool:
    """A value picked to be a secret, not a word, a path, a number or a variable:
    three kinds of character (lower, upper, digit, other), or long and varied."""
    kinds = sum(1 for c in _CLASSES if c.search(value)) + (
        re.search(rb"[^A-Za-z0-9]", value) is not None
    )
    return kinds >= 3 or (len(value) >= 20 and kinds >= 2 and len(set(value)) >= 12)


def _strong_password(url: bytes) -> bool:
    parts = _DB_URL.search(url)
    return parts is not None and strong(parts["p"])


def assignment_example(value: bytes) -> bool:
    return token_example(value) or filler(value.lower().rstrip(b"0123456789!"))


KEY_MATERIAL_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "gcp_service_account",
        rb"\\?\"type\\?\"\s{0,5}:\s{0,5}\\?\"service_account\\?\"",
        (b"service_account",),
        (),
        "Google Cloud service-account key file (JSON)",
        anywhere=True,
        has_gap=True,
        example=never,
        reach=(20, 40),
    ),
    make(
        "private_key",
        # The header and the start of a body: code that only names the header is no key.
        rb"-----BEGIN(?! ?OPENSSH| ?PGP)[A-Z0-9 ]{0,40}PRIVATE KEY-----" + _BREAK + rb"{1,8}"
        rb"(?:Proc-Type:[^\r\n\\]{1,40}"
        + _BREAK
        + rb"{1,4}DEK-Info:[^\r\n\\]{1,80}"
        + _BREAK
        + rb"{1,8})?"
        + _B64
        + rb"{40}",
        (b"PRIVATE KEY",),
        (),
        "PEM private key (RSA, EC, DSA, PKCS#8, encrypted)",
        anywhere=True,
        has_gap=True,
        example=never,
        reach=(60, 420),
    ),
    make(
        "openssh_private_key",
        rb"-----BEGIN OPENSSH PRIVATE KEY-----" + _BREAK + rb"{1,8}" + _B64 + rb"{40}",
        (b"PRIVATE KEY",),
        (),
        "OpenSSH private key",
        anywhere=True,
        has_gap=True,
        example=never,
        reach=(30, 120),
    ),
    make(
        "pgp_private_key",
        rb"-----BEGIN PGP PRIVATE KEY BLOCK-----" + _BREAK + rb"{1,8}"
        rb"(?:[A-Za-z-]{2,20}: [^\r\n\\]{1,100}" + _BREAK + rb"{1,8}){0,4}" + _B64 + rb"{40}",
        (b"PRIVATE KEY",),
        (),
        "OpenPGP private key block",
        anywhere=True,
        has_gap=True,
        example=never,
        reach=(30, 600),
    ),
    make(
        "putty_private_key",
        rb"PuTTY-User-Key-File-[23]: [a-z0-9-]{3,40}" + _BREAK + rb"{1,4}Encryption: ",
        (b"PuTTY-User-Key-File-",),
        (),
        "PuTTY private key file",
        anywhere=True,
        has_gap=True,
        example=never,
        reach=(0, 100),
    ),
    make(
        "private_key_body",
        # The DER structure every key of a kind starts with, base64-encoded: the key
        # without its armour lines. (Public keys start differently.)
        rb"(?:(?<![A-Za-z0-9_-])|(?<=\\[nr]))(?:MII"
        + _B64
        + rb"{3}IBAAK[BC]|MII"
        + _B64
        + rb"{3}IBADANBgkqhkiG9w0BAQEFAAS|MHcCAQEEI|MIGkAgEBBDB|MIHcAgEBBEIB|MIG"
        + _B64
        + rb"AgEAMB[AM]GByqGSM49AgEG|MC4CAQAwBQYDK2VwBCIEI|b3BlbnNzaC1rZXktdjE)"
        + _B64
        + rb"{40}",
        (
            b"IBAAK",
            b"IBADANBgkqhkiG9w0BAQEFAAS",
            b"MHcCAQEEI",
            b"MIGkAgEBBDB",
            b"MIHcAgEBBEIB",
            b"GByqGSM49AgEG",
            b"MC4CAQAwBQYDK2VwBCIEI",
            b"b3BlbnNzaC1rZXktdjE",
        ),
        (),
        "Private key body without its header (RSA, EC, Ed25519, OpenSSH)",
        example=never,
    ),
    make(
        "database_url",
        rb"(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver"
        rb"|clickhouse|cockroachdb|neo4j(?:\+s)?|couchdbs?)(?:\+[a-z0-9]{1,20})?://"
        rb"[^\s:/@\"'\\]{0,64}:[^\s/@\"'\\]{1,128}@[A-Za-z0-9.\[\]-]{1,253}",
        (b"://",),
        (),
        "Database connection URL with a password",
        anywhere=True,
        has_gap=True,
        example=_db_example,
        reach=(40, 460),
    ),
    make(
        "credential_url",
        # `.git-credentials` lines, proxy and registry URLs with a password in them.
        rb"(?:https?|ftps?|sftp|ssh|git|smb|webdavs?)://"
        rb"[^\s:/@\"'\\]{1,64}:[^\s/@\"'\\]{6,128}@[A-Za-z0-9.\[\]-]{1,253}",
        (b"://",),
        (),
        "URL with a user name and password (`.git-credentials`, proxy URLs)",
        anywhere=True,
        has_gap=True,
        check=_strong_password,
        example=_db_example,
        reach=(12, 460),
    ),
    make(
        "netrc_password",
        rb"machine[ \t\r\n]{1,8}[^\s]{1,253}[ \t\r\n]{1,8}login[ \t\r\n]{1,8}[^\s]{1,128}"
        rb"[ \t\r\n]{1,8}password[ \t\r\n]{1,8}(?P<v>[^\s]{6,200})",
        (b"machine",),
        (),
        "A `.netrc` entry with a password",
        anywhere=True,
        has_gap=True,
        check=strong,
        example=assignment_example,
        reach=(0, 600),
    ),
    make(
        "secret_assignment",
        # A line of an env file, a YAML or an INI config: `DB_PASSWORD=...`,
        # `password: ...`. Not source code (`password = "..."` quotes its string).
        rb"(?:(?m:^)|(?<=\\n))[ \t]{0,12}(?:export[ \t]{1,4})?[A-Za-z0-9_.-]{0,40}"
        # Keys as env files (upper case) and YAML (lower case) spell them; tokens and
        # private keys have formats of their own.
        rb"(?:password|PASSWORD|secret|SECRET|api_?key|API_?KEY)[A-Za-z0-9_.-]{0,20}"
        rb"(?:=[\"']?|[ \t]{0,3}:[ \t]{1,3}[\"']?|[ \t]{1,3}=[ \t]{1,3})"
        rb"(?P<v>[^\s\"'\\,;#()\[\]{}<>$`]{8,200})(?=[\"']?[ \t]*(?:$|\r|\n|\\[rn]))",
        (b"assword", b"ASSWORD", b"ecret", b"ECRET", b"pi_key", b"PI_KEY", b"apikey", b"APIKEY"),
        (),
        "A secret by name in an env file or config (`PASSWORD=...`, `api_key: ...`)",
        anywhere=True,
        has_gap=True,
        check=strong,
        example=assignment_example,
        reach=(80, 260),
    ),
    make(
        "supabase_service_key",
        _JWT,
        (b"eyJ",),
        ("supabase.co", "supabase.com"),
        "Supabase service-role key (a JWT that bypasses row-level security)",
        check=_supabase_service,
        example=_jwt_example,
    ),
    make(
        "kubernetes_service_account_token",
        _JWT,
        (b"eyJ",),
        (),
        "Kubernetes service-account token",
        check=_kubernetes,
        example=_jwt_example,
    ),
    make(
        "jwt",
        _JWT,
        (b"eyJ",),
        (),
        "JSON Web Token (flagged: also a routine bearer token)",
        Verdict.FLAG,
        check=lambda token: not (_supabase_service(token) or _kubernetes(token)),
        example=_jwt_example,
    ),
)
