"""Documentation and test values: skipped by default, blocked on request, never a way out.

Published example values are assembled from pieces here (they are public, but a
whole one would look like a leaked key to a scanner reading this repository).
"""

from __future__ import annotations

import json

import pytest
from mnemonic import Mnemonic

from agentcage.policy.formats.published_examples import published
from agentcage.policy.types import Verdict
from tests.unit.policy.formats import fakes
from tests.unit.policy.helpers import ALNUM, fake, policy, request

OPEN = {"domains": {"mode": "blocklist", "list": []}, "entropy": False, "content_type": False}
AWS_DOC_KEY = "AK" + "IAIOSFODNN7" + "EXAMPLE"
DOC_VALUES = {
    "aws_access_key_id": "aws_access_key_id = " + AWS_DOC_KEY,
    "github_token": "gh" + "p_" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdef01",  # 34: short
    "openai_project_key": "sk-" + "proj-" + "FAKE" + "0" * 40 + "TEST" + "0000",
    "payment_card_number": "card,4242424242424242,12/30",
    "iban": "GB82 " + "WEST 1234 5698 7654 32",
    "seed_phrase": "abandon " * 11 + "about",
    "jwt": fakes.jwt({"sub": "1234567890", "name": "John Doe", "iat": 1516239022}),
    "database_url": "postgres" + "ql://postgres:postgres@localhost:5432/app",
    "secret_assignment": "\nAPI_KEY=Your-Api-Key-Here1\n",
}


def _decide(text: str, **secrets: object) -> tuple[Verdict, tuple[str, ...]]:
    engine = policy(secrets=secrets, **OPEN) if secrets else policy(**OPEN)
    body = json.dumps({"text": text}).encode()
    decision = engine.check_request(request("collector.example.net", body=body))
    return decision.verdict, decision.rules


@pytest.mark.parametrize("name", sorted(DOC_VALUES))
def test_documentation_values_pass_by_default_and_are_blocked_on_request(name: str) -> None:
    text = DOC_VALUES[name]
    assert _decide(text) == (Verdict.ALLOW, ())
    # Blocked, even the formats only flagged when real (a JWT): a stand-in is
    # nobody's bearer token.
    assert _decide(text, documentation_values="block") == (Verdict.BLOCK, (name,))


GENESIS_ADDRESS = "1A1zP1eP5QGefi2" + "DMPTfTL5SLmv7DivfNa"
BIP173_ADDRESS = "bc1qw508d6qejxtdg4y5r3" + "zarvary0c5xw7kv8f3t4"
JWT_HEADER_RS256 = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"


@pytest.mark.parametrize(
    "text",
    [
        GENESIS_ADDRESS,
        BIP173_ADDRESS,
        # RS256 signs with 256 bytes or more: seven characters is no signature.
        "Bearer " + fakes.jwt({"iss": "internal", "sub": "svc"}).rsplit(".", 1)[0] + ".fakesig",
        # Unsigned.
        fakes.jwt({"sub": "svc-7", "role": "admin"}).replace(
            fakes.jwt({}).split(".")[0], "eyJhbGciOiJub25lIn0"
        ),
    ],
)
def test_flagged_formats_stand_ins_pass_by_default_and_are_blocked_on_request(text: str) -> None:
    assert _decide(text) == (Verdict.ALLOW, ())
    assert _decide(text, documentation_values="block")[0] is Verdict.BLOCK


def test_a_real_address_and_a_real_jwt_are_only_flagged_whatever_the_setting() -> None:
    real_jwt = fakes.jwt({"sub": fake(ALNUM, 12), "iat": 1700000000})
    for text in (fakes.bech32_address(seed=3), real_jwt):
        for secrets in ({}, {"documentation_values": "block"}):
            assert _decide(text, **secrets)[0] is Verdict.FLAG, (text, secrets)
    engine = policy(secrets={"documentation_values": "block"}, **OPEN)
    bearer = {"Authorization": "Bearer " + real_jwt}
    decision = engine.check_request(request("api.example.net", headers=bearer))
    assert decision.verdict is Verdict.ALLOW  # a bearer token's everyday place
    # A session cookie going back to the site that set it: audited, never refused.
    cookie = {"Cookie": "theme=dark; session=" + real_jwt}
    decision = engine.check_request(request("app.example.net", headers=cookie))
    assert decision.verdict is Verdict.FLAG and decision.rules == ("jwt",)


def test_a_jwt_signed_as_its_algorithm_signs_is_no_stand_in() -> None:
    header = JWT_HEADER_RS256
    claims = fakes.jwt({"sub": fake(ALNUM, 12)}).split(".")[1]
    short = f"{header}.{claims}." + fake(ALNUM + "-_", 86)  # an ES256-length signature
    full = f"{header}.{claims}." + fake(ALNUM + "-_", 342)
    assert _decide(short)[0] is Verdict.ALLOW
    assert _decide(full)[0] is Verdict.FLAG


def test_published_values_are_known_by_digest() -> None:
    assert published(AWS_DOC_KEY.encode())
    assert published(b"4111" + b"1111" * 3)
    assert published(b"GB82" + b"WEST12345698765432")
    assert published(fakes.xprv().encode()) is False


def test_a_marker_does_not_hide_a_real_key() -> None:
    # The random rest of the key still has to be there, and it is judged alone.
    real = "gh" + "p_" + fake(ALNUM, 36)
    for text in (real + "EXAMPLE", real[:10] + "EXAMPLE" + real[10:], real + "_test"):
        assert _decide(text)[0] is Verdict.BLOCK, text


def test_seed_phrase_examples_and_real_phrases() -> None:
    words = Mnemonic("english").wordlist
    in_order = " ".join(words[:24])  # an excerpt of the wordlist, as code quotes it
    for example in (in_order, "legal winner thank year wave sausage worth useful " * 1):
        assert _decide(example)[0] is Verdict.ALLOW
    for seed in (1, 2, 3):
        for length in (12, 18, 24):
            assert _decide(fakes.mnemonic(seed, length)) == (Verdict.BLOCK, ("seed_phrase",))


@pytest.mark.parametrize(
    "text",
    [
        "card id 9" + fakes.card("4", 16) + "1",  # inside a longer digit run
        "order " + fakes.card("4", 16),  # a bare number: an ID one time in ten
        '"span": ' + fakes.card("4", 16) + ', "at": "2030-12-01"',  # a date, no expiry
        "card ratio 0." + fakes.card("4", 16),  # a decimal
        "card " + fakes.card("1", 16),  # no issuer starts with 1
        "card x" + fakes.card("4", 16),  # glued to a word
    ],
)
def test_numbers_that_are_not_cards(text: str) -> None:
    assert _decide(text)[0] is Verdict.ALLOW


def test_cards_grouped_as_printed() -> None:
    number = fakes.card("51", 16, seed=9)
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    assert _decide("card: " + spaced)[1] == ("payment_card_number",)
    assert _decide("card: " + spaced.replace(" ", "-"))[1] == ("payment_card_number",)
    mixed = spaced[:9] + "-" + spaced[10:]
    assert _decide("card: " + mixed)[0] is Verdict.ALLOW
    # Unlabelled and ungrouped, a number counts when its expiry date follows it.
    assert _decide(f"Ann,{number},03/29")[1] == ("payment_card_number",)
    assert _decide(f"Ann,{number},2029")[0] is Verdict.ALLOW


@pytest.mark.parametrize(
    "text",
    [
        "\nDB_PASSWORD={{DB_PASSWORD}}\n",  # a placeholder
        "\npassword: ${DB_PASSWORD}\n",  # a template
        "\nPASSWORD=changeme\n",
        "\n    password = get_password(user)\n",
        'self.client.login(username="admin", password="' + fake(ALNUM, 12) + '1!")\n',
    ],
)
def test_assignments_that_hold_no_secret(text: str) -> None:
    assert _decide(text)[0] is Verdict.ALLOW


def test_an_env_dump_and_a_yaml_config_are_caught() -> None:
    password = fake(ALNUM, 14) + "!2026"
    assert _decide(f"HOME=/root\nSMTP_PASSWORD={password}\nSHELL=/bin/sh")[0] is Verdict.BLOCK
    yaml = f"database:\n  host: db\n  password: {password}\napi:\n  level: info\n"
    assert _decide(yaml)[1] == ("secret_assignment",)


def test_lists_of_common_words_are_no_seed_phrase() -> None:
    # Most common nouns are BIP-39 words and one 12-word window in 16 has a valid
    # checksum: a run inside a longer list of words is not taken for a phrase.
    common = ["time", "year", "way", "day", "thing", "man", "world", "life", "hand", "child"]
    common += ["eye", "woman", "place", "work", "case", "point", "number", "group", "table"]
    for seed in range(30):
        words = fakes.rng(seed).choices([*common, "house"], k=300)
        assert _decide(" ".join(words))[0] is Verdict.ALLOW
    # Next to other words, a phrase still counts when it is labelled as one.
    phrase = fakes.mnemonic(7)
    assert _decide("so here is my recovery phrase " + phrase + " keep it")[1] == ("seed_phrase",)
