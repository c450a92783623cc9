"""A realistic fake and a near miss for each format added beside the original catalogue.

Prefixes are split in two and bodies drawn at test time (`fake`, `fakes.py`), so
this repository holds nothing that looks like a leaked key.
"""

from __future__ import annotations

import json
import string

from tests.unit.policy.formats import fakes
from tests.unit.policy.helpers import ALNUM, HEX, fake

URLSAFE = ALNUM + "-_"
LOWER_DIGITS = string.ascii_lowercase + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"


def _sep(a: str, b: str) -> str:
    return a + b


RSA = fakes.pem("rsa")
EC = fakes.pem("ec")
OPENSSH = fakes.pem("ed25519")

SERVICE_CASES: dict[str, tuple[str, str]] = {
    "aws_session_token": (
        _sep("IQoJb3Jp", "Z2luX2Vj") + fake(B64, 300),
        _sep("IQoJb3Jp", "Z2luX2Vj") + fake(B64, 40),
    ),
    "aws_bedrock_api_key": (
        _sep("ABSKQmVk", "cm9ja0FQSUtleS") + fake(B64, 120),
        _sep("ABSKQmVk", "cm9ja0FQSUtleS") + fake(B64, 10),
    ),
    "google_oauth_client_secret": (_sep("GOC", "SPX-") + fake(URLSAFE, 28), "GOCSPX-" + "short"),
    "google_refresh_token": (_sep("1/", "/0") + fake(URLSAFE, 100), _sep("1/", "/0") + "abc"),
    "firebase_cloud_messaging_key": (
        "AAAA" + fake(URLSAFE, 7) + _sep(":APA", "91b") + fake(URLSAFE, 134),
        "AAAA" + fake(URLSAFE, 7) + _sep(":APA", "91b") + fake(URLSAFE, 40),
    ),
    "azure_ad_client_secret": (
        fake(ALNUM, 3) + "8" + _sep("Q", "~") + fake(URLSAFE + "~.", 34),
        fake(ALNUM, 3) + "8" + _sep("Q", "~") + fake(URLSAFE, 20),
    ),
    "alibaba_access_key_id": (_sep("LT", "AI") + fake(ALNUM, 20), _sep("LT", "AI") + "x1"),
    "tencent_secret_id": (_sep("AK", "ID") + fake(ALNUM, 32), _sep("AK", "ID") + fake(ALNUM, 20)),
    "scaleway_access_key": (_sep("SC", "W") + fake(UPPER_DIGITS, 17), "SCW" + "SHORT"),
    "heroku_api_key": (_sep("HR", "KU-") + fake(URLSAFE, 60), _sep("HR", "KU-") + fake(ALNUM, 9)),
    "fly_io_token": (_sep("fo", "1_") + fake(URLSAFE, 43), _sep("fo", "1_") + fake(ALNUM, 20)),
    "vercel_token": (_sep("vc", "p_") + fake(ALNUM, 56), _sep("vc", "p_") + fake(ALNUM, 12)),
    "netlify_token": (_sep("nf", "p_") + fake(ALNUM, 36), _sep("nf", "p_") + fake(ALNUM, 20)),
    "render_api_key": (_sep("rn", "d_") + fake(ALNUM, 32), _sep("rn", "d_") + fake(ALNUM, 12)),
    "terraform_cloud_token": (
        fake(ALNUM, 14) + _sep(".atlas", "v1.") + fake(URLSAFE, 67),
        fake(ALNUM, 14) + _sep(".atlas", "v1.") + fake(URLSAFE, 30),
    ),
    "bitbucket_token": (_sep("AT", "BB") + fake(ALNUM, 32), _sep("AT", "BB") + fake(ALNUM, 12)),
    "gitlab_runner_registration_token": (
        _sep("GR134", "8941") + fake(URLSAFE, 20),
        _sep("GR134", "8941") + fake(URLSAFE, 10),
    ),
    "circleci_token": (
        _sep("CCIP", "AT_") + fake(ALNUM, 22) + "_" + fake(HEX, 40),
        _sep("CCIP", "AT_") + fake(ALNUM, 22),
    ),
    "buildkite_token": (_sep("bk", "ua_") + fake(HEX, 40), _sep("bk", "ua_") + fake(HEX, 39)),
    "sonar_token": (_sep("sq", "p_") + fake(HEX, 40), _sep("sq", "p_") + fake(HEX, 30)),
    "jfrog_token": (_sep("AK", "Cp") + fake(ALNUM, 69), _sep("AK", "Cp") + fake(ALNUM, 30)),
    "rubygems_api_key": (
        _sep("ruby", "gems_") + fake(HEX, 48),
        _sep("ruby", "gems_") + fake(HEX, 40),
    ),
    "nuget_api_key": (_sep("oy", "2") + fake(LOWER_DIGITS, 43), "oy2" + fake(LOWER_DIGITS, 30)),
    "crates_io_token": (_sep("ci", "o") + fake(ALNUM, 32), "cio" + fake(ALNUM, 31)),
    "clojars_token": (
        _sep("CLOJ", "ARS_") + fake(LOWER_DIGITS, 60),
        _sep("CLOJ", "ARS_") + fake(LOWER_DIGITS, 50),
    ),
    "prefect_api_key": (_sep("pn", "u_") + fake(ALNUM, 36), _sep("pn", "u_") + fake(ALNUM, 30)),
    "readme_api_key": (
        _sep("rd", "me_") + fake(LOWER_DIGITS, 70),
        _sep("rd", "me_") + fake(LOWER_DIGITS, 40),
    ),
    "dynatrace_token": (
        _sep("dt0", "c01.") + fake(UPPER_DIGITS, 24) + "." + fake(UPPER_DIGITS, 64),
        _sep("dt0", "c01.") + fake(UPPER_DIGITS, 24) + "." + fake(UPPER_DIGITS, 30),
    ),
    "honeycomb_key": (
        _sep("hca", "ik_") + fake(LOWER_DIGITS, 58),
        _sep("hca", "ik_") + fake(LOWER_DIGITS, 40),
    ),
    "planetscale_token": (
        _sep("pscale", "_tkn_") + fake(ALNUM, 43),
        _sep("pscale", "_tkn_") + fake(ALNUM, 12),
    ),
    "neon_api_key": (
        _sep("na", "pi_") + fake(LOWER_DIGITS, 64),
        _sep("na", "pi_") + fake(LOWER_DIGITS, 50),
    ),
    "aiven_password": (_sep("AV", "NS_") + fake(URLSAFE, 23), _sep("AV", "NS_") + fake(ALNUM, 8)),
    "airtable_token": (
        _sep("pa", "t") + fake(ALNUM, 14) + "." + fake(HEX, 64),
        _sep("pa", "t") + fake(ALNUM, 14) + "." + fake(HEX, 40),
    ),
    "contentful_token": (
        _sep("CF", "PAT-") + fake(URLSAFE, 43),
        _sep("CF", "PAT-") + fake(URLSAFE, 30),
    ),
    "clickup_token": (
        _sep("p", "k_") + fake(string.digits, 8) + "_" + fake(UPPER_DIGITS, 32),
        _sep("p", "k_") + fake(string.digits, 8) + "_" + fake(UPPER_DIGITS, 20),
    ),
    "mapbox_secret_token": (
        _sep("sk", ".eyJ") + fake(URLSAFE, 80) + "." + fake(URLSAFE, 22),
        _sep("pk", ".eyJ") + fake(URLSAFE, 80) + "." + fake(URLSAFE, 22),
    ),
    "cloudinary_url": (
        _sep("cloudinary", "://") + fake(string.digits, 15) + ":" + fake(URLSAFE, 27) + "@demo",
        _sep("cloudinary", "://") + fake(string.digits, 15) + "@demo",
    ),
    "stripe_webhook_secret": (_sep("wh", "sec_") + fake(ALNUM, 32), "whsec_" + fake(ALNUM, 12)),
    "braintree_access_token": (
        _sep("access_token$pro", "duction$") + fake(LOWER_DIGITS, 16) + "$" + fake(HEX, 32),
        _sep("access_token$sand", "box$") + fake(LOWER_DIGITS, 16) + "$" + fake(HEX, 32),
    ),
    "flutterwave_secret_key": (
        _sep("FLW", "SECK-") + fake(HEX, 32) + "-X",
        _sep("FLW", "SECK_TEST-") + fake(HEX, 32) + "-X",
    ),
    "plaid_access_token": (
        _sep("access-", "production-")
        + "-".join(fake(HEX, n, seed=n) for n in (8, 4, 4, 4, 12)).replace("-", "-", 4),
        _sep("access-", "sandbox-") + "-".join(fake(HEX, n, seed=n) for n in (8, 4, 4, 4, 12)),
    ),
    "paddle_api_key": (
        _sep("pdl_live", "_apikey_") + fake(ALNUM, 60),
        _sep("pdl_sdbx", "_apikey_") + fake(ALNUM, 60),
    ),
    "mollie_api_key": (_sep("li", "ve_") + fake(ALNUM, 30), _sep("te", "st_") + fake(ALNUM, 30)),
    "discord_webhook_url": (
        "https://discord.com"
        + _sep("/api/web", "hooks/")
        + fake(string.digits, 19)
        + "/"
        + fake(URLSAFE, 68),
        "https://discord.com" + _sep("/api/web", "hooks/") + fake(string.digits, 19),
    ),
    "teams_webhook_url": (
        "https://org." + _sep("webhook.office", ".com/webhookb2/") + fake(HEX + "-@/", 120),
        "https://org." + _sep("webhook.office", ".com/webhookb2/") + fake(HEX, 10),
    ),
    "mailchimp_api_key": (fake(HEX, 32) + _sep("-u", "s21"), fake(HEX, 32) + "-eu21"),
    "brevo_api_key": (
        _sep("xkey", "sib-") + fake(HEX, 64) + "-" + fake(ALNUM, 16),
        _sep("xkey", "sib-") + fake(HEX, 64),
    ),
    "mailersend_api_key": (_sep("ml", "sn.") + fake(HEX, 64), _sep("ml", "sn.") + fake(HEX, 40)),
    "resend_api_key": (
        _sep("r", "e_") + fake(ALNUM, 8) + "_" + fake(ALNUM, 24),
        _sep("r", "e_") + fake(ALNUM, 8),
    ),
    "intercom_token": (_sep("dG9r", "O") + fake(B64, 60) + "=", _sep("dG9r", "O") + fake(B64, 20)),
    "twitter_bearer_token": (
        "A" * 21 + fake(ALNUM + "%", 90),
        "A" * 21 + fake(ALNUM, 30),
    ),
    "langsmith_api_key": (
        _sep("lsv2", "_pt_") + fake(HEX, 32) + "_" + fake(HEX, 10),
        _sep("lsv2", "_pt_") + fake(HEX, 32),
    ),
    "pinecone_api_key": (
        _sep("pc", "sk_") + fake(ALNUM, 5) + "_" + fake(ALNUM, 64),
        _sep("pc", "sk_") + fake(ALNUM, 5),
    ),
    "fireworks_api_key": (_sep("f", "w_") + fake(ALNUM, 24), _sep("f", "w_") + fake(ALNUM, 12)),
    "nvidia_api_key": (_sep("nv", "api-") + fake(URLSAFE, 64), _sep("nv", "api-") + "x" * 5),
    "cerebras_api_key": (
        _sep("cs", "k-") + fake(LOWER_DIGITS, 48),
        _sep("cs", "k-") + fake(LOWER_DIGITS, 40),
    ),
    "langfuse_secret_key": (
        _sep("sk-", "lf-") + "-".join(fake(HEX, n, seed=n + 3) for n in (8, 4, 4, 4, 12)),
        _sep("pk-", "lf-") + "-".join(fake(HEX, n, seed=n + 3) for n in (8, 4, 4, 4, 12)),
    ),
    "tavily_api_key": (_sep("tv", "ly-") + fake(ALNUM, 32), _sep("tv", "ly-") + fake(ALNUM, 20)),
    "firecrawl_api_key": (_sep("f", "c-") + fake(HEX, 32), _sep("f", "c-") + fake(HEX, 31)),
    "elevenlabs_api_key": (_sep("s", "k_") + fake(HEX, 48), _sep("s", "k_") + fake(HEX, 40)),
    "llamacloud_api_key": (_sep("ll", "x-") + fake(ALNUM, 48), _sep("ll", "x-") + fake(ALNUM, 40)),
    "anyscale_api_key": (
        _sep("esec", "ret_") + fake(ALNUM, 30),
        _sep("esec", "ret_") + fake(ALNUM, 10),
    ),
    "helicone_api_key": (
        _sep("sk-heli", "cone-") + "-".join(fake(LOWER_DIGITS, 7, seed=n) for n in range(4)),
        _sep("sk-heli", "cone-") + "-".join(fake(LOWER_DIGITS, 7, seed=n) for n in range(3)),
    ),
    # A DeepSeek-style key; the near miss is a word-only name (`sk-learn-...`).
    "sk_api_key": (_sep("s", "k-") + fake(HEX, 32), _sep("s", "k-") + "scikitlearnestimatorsdocs"),
}

_APP_PASSWORD = fake(ALNUM, 12) + "!" + fake(string.digits, 3)

KEY_CASES: dict[str, tuple[str, str]] = {
    "gcp_service_account": (
        json.dumps({"type": "service" + "_account", "project_id": "demo"}),
        json.dumps({"type": "authorized_user", "service_account_email": "x"}),
    ),
    "private_key": (RSA, 'HEADER = "' + RSA.splitlines()[0] + '"\nFOOTER = "-----END"'),
    "openssh_private_key": (OPENSSH, OPENSSH.splitlines()[0] + "\n(truncated)"),
    "pgp_private_key": (
        "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\nComment: demo\n\nlQOYBF" + fake(B64, 70),
        "-----BEGIN PGP " + "PUBLIC KEY BLOCK-----\n\nmQINBF" + fake(B64, 70),
    ),
    "putty_private_key": (
        "PuTTY-User-" + "Key-File-3: ssh-ed25519\nEncryption: none\nComment: demo\n",
        "PuTTY-User-" + "Key-File format is described in the manual.",
    ),
    "private_key_body": (fakes.key_body(EC), fakes.key_body(EC).replace("AgEAMBMG", "AgEAMFMG")),
    "database_url": (
        "postgres" + "ql://app:" + _APP_PASSWORD + "@db.internal.example.com:5432/app",
        "postgres" + "ql://app:password@localhost:5432/app",
    ),
    "credential_url": (
        "https" + "://deploy:" + _APP_PASSWORD + "@git.internal.example.com\n",
        "https" + "://user:password@git.example.com/repo.git",
    ),
    "netrc_password": (
        "machine api.internal.example.com\n  login deploy\n  pass" + "word " + _APP_PASSWORD,
        "machine api.internal.example.com login deploy password changeme",
    ),
    "secret_assignment": (
        "# settings\nDB_" + "PASSWORD=" + _APP_PASSWORD + "\nDEBUG=1",
        'def login():\n    password = "' + _APP_PASSWORD + '"\n',
    ),
    "supabase_service_key": (
        fakes.jwt({"iss": "supabase", "ref": fake(LOWER_DIGITS, 20), "role": "service_role"}),
        "eyJ" + fake(URLSAFE, 30),
    ),
    "kubernetes_service_account_token": (
        fakes.jwt({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:bot"}),
        "eyJ" + fake(URLSAFE, 30),
    ),
    "jwt": (
        fakes.jwt({"sub": fake(HEX, 16), "name": "agent", "iat": 1700000000}),
        fakes.jwt({"sub": fake(HEX, 16)}).split(".")[0],
    ),
}

FINANCIAL_CASES: dict[str, tuple[str, str]] = {
    "payment_card_number": (
        "card_number=" + fakes.card("45", 16),
        "card_number=" + fakes.card("45", 16)[:-1] + str((int(fakes.card("45", 16)[-1]) + 1) % 10),
    ),
    "iban": (fakes.iban("DE", 22), "DE00" + fakes.iban("DE", 22)[4:]),
    "bitcoin_private_key": (
        fakes.wif(),
        fakes.wif()[:-1] + ("2" if fakes.wif()[-1] != "2" else "3"),
    ),
    "extended_private_key": (
        fakes.xprv(),
        fakes.xprv()[:-1] + ("2" if fakes.xprv()[-1] != "2" else "3"),
    ),
    "hex_private_key": (
        json.dumps({"privateKey": "0x" + fake(HEX, 64)}),
        json.dumps({"publicKey": "0x" + fake(HEX, 64)}),
    ),
    "seed_phrase": (fakes.mnemonic(), fakes.bad_mnemonic()),
    "bitcoin_address": (fakes.bech32_address(), fakes.bech32_address()[:-1] + "q"),
}

# Values with no format, found by the name beside them (`named_values.py`).
NAMED_CASES: dict[str, tuple[str, str]] = {
    # In a JSON string (the tests send each case so): an env dump's lines.
    "secret_env_value": (
        "HOME=/root\nHF_" + "TOKEN=" + fake(ALNUM, 34) + "\nLANG=C",
        "HOME=/root\nHF_" + "TOKEN_PATH=/run/secrets/" + fake(ALNUM, 20),
    ),
    "secret_field": (
        "user=deploy&pass" + "word=" + _APP_PASSWORD + "&remember=1",
        "max_tokens=1024&page" + "Token=" + fake(ALNUM, 40),
    ),
}

NEW_CASES = {**SERVICE_CASES, **KEY_CASES, **FINANCIAL_CASES, **NAMED_CASES}
