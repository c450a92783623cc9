"""Credential formats without a known value, through the real `agentcage proxy run`.

Card numbers, seed phrases and env-file secrets are blocked on their way out
(nothing reaches the upstream); documentation values pass by default and are
blocked with `secrets.documentation_values: block`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.proxy.conftest import fresh_client, serving, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream
from tests.unit.policy.formats import fakes
from tests.unit.policy.helpers import ALNUM, fake

pytestmark = pytest.mark.integration
# The Visa test number every payment tutorial prints, and the BIP-39 test vector.
TEST_CARD = "4111 " + "1111 " * 2 + "1111"
TEST_SEED = "abandon " * 11 + "about"
# The Bitcoin genesis address, and a JWT whose signature RS256 cannot make.
GENESIS_ADDRESS = "1A1zP1eP5QGefi2" + "DMPTfTL5SLmv7DivfNa"
FAKE_SIGNED_JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJpc3MiOiJpbnRlcm5hbCJ9" + ".fakesig"


@pytest.fixture(scope="module")
def strict(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    extra = "rate_limit: false\nsecrets: {documentation_values: block}"
    yield from serving(start_proxy(tmp_path_factory.mktemp("strict"), fake_dns, upstream, extra))


def _send(client: httpx.Client, upstream: Upstream, text: str) -> httpx.Response:
    return client.post(
        f"https://api.github.com:{upstream.tls_port}/repos/o/r/issues",
        json={"title": "notes", "body": text},
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("payment_card_number", "card " + fakes.card("52", 16, seed=3)),
        ("iban", "pay to " + fakes.iban("FR", 27, seed=2)),
        ("seed_phrase", "backup: " + fakes.mnemonic(seed=4, words=24)),
        ("bitcoin_private_key", "wif=" + fakes.wif(seed=5)),
        ("secret_assignment", "cat .env\nDATABASE_PASSWORD=" + fakes.wif(seed=6)[:20] + "!\n"),
        ("sk_api_key", "key: " + "s" + "k-test-" + fake(ALNUM, 24, seed=7)),
        (
            "credential_url",
            "cat ~/.git-credentials\nhttps"
            + "://deploy:"
            + fakes.wif(seed=8)[:20]
            + "!@git.corp.example",
        ),
        ("secret_env_value", "printenv\nHF_" + "TOKEN=" + fakes.wif(seed=10)[:30] + "\n"),
        (
            "netrc_password",
            "cat ~/.netrc\nmachine ci.corp.example login deploy pass"
            + "word "
            + fakes.wif(seed=9)[:20]
            + "!",
        ),
    ],
)
def test_financial_and_key_material_is_blocked_before_upstream(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess, name: str, text: str
) -> None:
    response = _send(client, upstream, text)
    assert response.status_code == 403, response.text
    assert response.json()["inspector"] == "secrets"
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["verdict"] == "block" and name in r["rules"])
    assert text.split()[-1] not in str(line)  # the value itself is never logged


def test_documentation_values_pass_by_default(client: httpx.Client, upstream: Upstream) -> None:
    response = _send(client, upstream, f"Use {TEST_CARD} in test mode; seed: {TEST_SEED}")
    assert response.status_code == 200
    assert len(upstream.received) == 1


def test_documentation_values_are_blocked_when_configured(
    strict: ProxyProcess, upstream: Upstream
) -> None:
    for client in fresh_client(strict, upstream):
        for text in (f"Use {TEST_CARD} in test mode", f"seed: {TEST_SEED}"):
            response = _send(client, upstream, text)
            assert response.status_code == 403, text
        assert upstream.received == []


def _stand_ins(client: httpx.Client, upstream: Upstream) -> list[int]:
    base = f"https://api.github.com:{upstream.tls_port}"
    wallet = client.get(f"{base}/collect", params={"wallet": GENESIS_ADDRESS})
    bearer = client.get(f"{base}/me", headers={"Authorization": f"Bearer {FAKE_SIGNED_JWT}"})
    return [wallet.status_code, bearer.status_code]


def test_stand_ins_of_flagged_formats_pass_by_default(
    client: httpx.Client, upstream: Upstream
) -> None:
    assert _stand_ins(client, upstream) == [200, 200]
    assert len(upstream.received) == 2


def test_stand_ins_of_flagged_formats_are_blocked_when_configured(
    strict: ProxyProcess, upstream: Upstream
) -> None:
    for client in fresh_client(strict, upstream):
        assert _stand_ins(client, upstream) == [403, 403]
        assert upstream.received == []
    for rule in ("bitcoin_address", "jwt"):
        line = strict.wait_for_audit(lambda r, n=rule: r["verdict"] == "block" and n in r["rules"])
        assert "fakesig" not in line["reason"] and GENESIS_ADDRESS not in line["reason"]


# An Anthropic key toward GitHub, in spellings that hide its format from a plain scan.
_KEY = "sk-ant-" + "api03-" + fake(ALNUM + "-_", 93, seed=8) + "AA"


@pytest.mark.parametrize(
    "spelled",
    [
        "-".join(_KEY),
        "\n".join(_KEY),
        "".join(f"&#{ord(c)};" for c in _KEY),
        "".join(f"\\u{ord(c):04x}" for c in _KEY),
    ],
    ids=["dash-separated", "newline-separated", "html-entities", "unicode-escapes"],
)
def test_a_format_in_a_spelling_is_blocked_before_upstream(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess, spelled: str
) -> None:
    response = _send(client, upstream, spelled)
    assert response.status_code == 403, response.text
    assert upstream.received == []
    proxy.wait_for_audit(lambda r: r["verdict"] == "block" and "anthropic_api_key" in r["rules"])


def test_a_format_in_wrapped_base64_is_blocked_before_upstream(
    client: httpx.Client, upstream: Upstream
) -> None:
    part = base64.encodebytes(b"report line\n" + _KEY.encode() + b"\n")
    body = b"--b1\r\nContent-Transfer-Encoding: base64\r\n\r\n" + part + b"\r\n--b1--\r\n"
    response = client.post(
        f"https://api.github.com:{upstream.tls_port}/upload",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b1"},
    )
    assert response.status_code == 403, response.text
    assert upstream.received == []


@pytest.fixture(scope="module")
def named(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    extra = "rate_limit: false\nsecrets: {named_fields: block}"
    yield from serving(start_proxy(tmp_path_factory.mktemp("named"), fake_dns, upstream, extra))


def _api_key_call(client: httpx.Client, upstream: Upstream) -> httpx.Response:
    # A key with no format of its own, in the header APIs take keys in.
    headers = {"X-Api-Key": fake(ALNUM, 40, seed=11)}
    return client.get(f"https://api.github.com:{upstream.tls_port}/v1/items", headers=headers)


def test_a_credential_field_is_flagged_and_forwarded_by_default(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    assert _api_key_call(client, upstream).status_code == 200
    assert len(upstream.received) == 1
    line = proxy.wait_for_audit(lambda r: "secret_field" in r.get("rules", []))
    assert line["verdict"] == "flag"
    assert fake(ALNUM, 40, seed=11) not in str(line)


def test_a_credential_field_is_blocked_when_configured(
    named: ProxyProcess, upstream: Upstream
) -> None:
    for client in fresh_client(named, upstream):
        response = _api_key_call(client, upstream)
        assert response.status_code == 403, response.text
        assert upstream.received == []
