"""Built-in credential formats, each with the provider hosts that legitimately receive it.

Rules for every pattern, so a scan stays linear on megabyte bodies:
- bytes regexes built from a literal prefix and bounded character-class repeats; no
  nested or unbounded quantifiers, no backreferences;
- `anchors`: literals at least one of which occurs in every match, checked with a
  fast substring search before the regex runs (an empty tuple means "always run");
- `hosts`: where the credential may go (a domain matches its subdomains too);
- every match contains a run of at least `MIN_RUN` characters from `TOKEN_ALPHABET`,
  so the scanner searches only windows around such runs; the few formats without
  one set `anywhere` and are searched everywhere their anchor occurs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agentcage.policy.types import Verdict

TOKEN_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/"
MIN_RUN = 20
# Not preceded by a token character or "-": `cache-key-<md5>` is not a Mailgun key.
_B = rb"(?<![A-Za-z0-9_-])"
_E = rb"(?![A-Za-z0-9_])"  # not followed by one
_E_DASH = rb"(?![A-Za-z0-9_-])"


@dataclass(frozen=True, slots=True)
class SecretPattern:
    name: str
    regex: re.Pattern[bytes]
    anchors: tuple[bytes, ...]
    hosts: tuple[str, ...] = ()
    description: str = ""
    # Formats that are also routine bearer tokens are flagged, not blocked, by default.
    verdict: Verdict = field(default=Verdict.BLOCK)
    anywhere: bool = False  # no long token run: search the whole payload
    # Skip documentation values (AKIAIOSFODNN7EXAMPLE, ghp_xxxx...): agents quote them in
    # code they send to their LLM, and a real random key never looks like that.
    skip_examples: bool = True


def _p(
    name: str,
    regex: bytes,
    anchors: tuple[bytes, ...],
    hosts: tuple[str, ...],
    description: str,
    verdict: Verdict = Verdict.BLOCK,
    anywhere: bool = False,
) -> SecretPattern:
    return SecretPattern(name, re.compile(regex), anchors, hosts, description, verdict, anywhere)


BUILTIN_PATTERNS: tuple[SecretPattern, ...] = (
    _p(
        "aws_access_key_id",
        rb"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Z0-9])",
        (b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
        ("amazonaws.com",),
        "AWS access key ID",
    ),
    _p(
        "aws_secret_access_key",
        # `\\?` lets the quotes be JSON-escaped: a credentials file pasted into a JSON string.
        rb"(?i:secret_?access_?key|secret-access-key)(?:\\?[\"'])?\s{0,3}[:=]\s{0,3}(?:\\?[\"'])?"
        rb"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
        (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey", b"ecret-access-key"),
        ("amazonaws.com",),
        "AWS secret access key next to its name",
    ),
    _p(
        "github_token",
        _B + rb"gh[pousr]_[A-Za-z0-9]{36,251}" + _E,
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
        ("github.com", "githubusercontent.com"),
        "GitHub classic personal access, OAuth, user-to-server, server and refresh tokens",
    ),
    _p(
        "github_fine_grained_pat",
        _B + rb"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}" + _E,
        (b"github_pat_",),
        ("github.com", "githubusercontent.com"),
        "GitHub fine-grained personal access token",
    ),
    _p(
        "anthropic_api_key",
        _B + rb"sk-ant-[a-z]{2,8}[0-9]{2}-[A-Za-z0-9_-]{80,120}" + _E_DASH,
        (b"sk-ant-",),
        ("anthropic.com",),
        "Anthropic API, admin and OAuth keys (sk-ant-...)",
    ),
    _p(
        "openai_project_key",
        _B + rb"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,200}" + _E_DASH,
        (b"sk-proj-", b"sk-svcacct-", b"sk-admin-"),
        ("openai.com",),
        "OpenAI project, service-account and admin keys",
    ),
    _p(
        "openai_api_key",
        _B + rb"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _E_DASH,
        (b"T3BlbkFJ",),
        ("openai.com",),
        "OpenAI legacy user key (sk-...T3BlbkFJ...)",
    ),
    _p(
        "openrouter_api_key",
        _B + rb"sk-or-v1-[0-9a-f]{64}" + _E,
        (b"sk-or-v1-",),
        ("openrouter.ai",),
        "OpenRouter API key",
    ),
    _p(
        "slack_token",
        _B + rb"xox[abposre]-[0-9]{6,15}-[A-Za-z0-9-]{8,200}" + _E,
        (b"xoxa-", b"xoxb-", b"xoxp-", b"xoxo-", b"xoxs-", b"xoxr-", b"xoxe-"),
        ("slack.com",),
        "Slack bot, user, app and refresh tokens",
    ),
    _p(
        "slack_app_token",
        _B + rb"xapp-[0-9]-[A-Z0-9]{6,20}-[0-9]{6,20}-[a-f0-9]{32,80}" + _E,
        (b"xapp-",),
        ("slack.com",),
        "Slack app-level token",
    ),
    _p(
        "slack_webhook_url",
        rb"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,200}",
        (b"hooks.slack.com",),
        ("slack.com",),
        "Slack incoming-webhook URL",
    ),
    _p(
        "stripe_secret_key",
        _B + rb"(?:sk|rk)_live_[A-Za-z0-9]{20,250}" + _E,
        (b"sk_live_", b"rk_live_"),
        ("stripe.com",),
        "Stripe live secret and restricted keys",
    ),
    _p(
        "google_api_key",
        _B + rb"AIza[0-9A-Za-z_-]{35}" + _E_DASH,
        (b"AIza",),
        ("googleapis.com", "google.com"),
        "Google API key",
    ),
    _p(
        "google_oauth_token",
        _B + rb"ya29\.[0-9A-Za-z_-]{30,2000}" + _E_DASH,
        (b"ya29.",),
        ("googleapis.com", "google.com"),
        "Google OAuth access token",
    ),
    _p(
        "gcp_service_account",
        rb"\\?\"type\\?\"\s{0,5}:\s{0,5}\\?\"service_account\\?\"",
        (b"service_account",),
        (),
        "Google Cloud service-account key file (JSON)",
        anywhere=True,
    ),
    _p(
        "gitlab_token",
        _B + rb"gl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|oas)-[A-Za-z0-9_-]{20,64}" + _E_DASH,
        (b"glpat-", b"gldt-", b"glrt-", b"glcbt-", b"glptt-", b"glft-", b"glimt-", b"glagent-"),
        ("gitlab.com",),
        "GitLab personal, deploy, runner and other tokens",
    ),
    _p(
        "npm_token",
        _B + rb"npm_[A-Za-z0-9]{36}" + _E,
        (b"npm_",),
        ("npmjs.org", "npmjs.com"),
        "npm access token",
    ),
    _p(
        "pypi_token",
        _B + rb"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}" + _E_DASH,
        (b"pypi-AgEIcHlwaS5vcmc",),
        ("pypi.org",),
        "PyPI API token",
    ),
    _p(
        "huggingface_token",
        _B + rb"hf_[A-Za-z0-9]{34}" + _E,
        (b"hf_",),
        ("huggingface.co", "hf.co"),
        "Hugging Face access token",
    ),
    _p(
        "twilio_api_key",
        _B + rb"SK[0-9a-f]{32}" + _E,
        (b"SK",),
        ("twilio.com",),
        "Twilio API key SID",
    ),
    _p(
        "sendgrid_api_key",
        _B + rb"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}" + _E_DASH,
        (b"SG.",),
        ("sendgrid.com", "sendgrid.net"),
        "SendGrid API key",
    ),
    _p(
        "mailgun_api_key",
        _B + rb"key-[0-9a-f]{32}" + _E,
        (b"key-",),
        ("mailgun.net", "mailgun.org"),
        "Mailgun API key",
    ),
    _p(
        "jwt",
        _B + rb"eyJ[A-Za-z0-9_-]{10,4000}\.eyJ[A-Za-z0-9_-]{10,8000}\.[A-Za-z0-9_-]{20,1000}",
        (b"eyJ",),
        (),
        "JSON Web Token (flagged: also a routine bearer token)",
        Verdict.FLAG,
    ),
    _p(
        "private_key",
        rb"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        (b"PRIVATE KEY",),
        (),
        "PEM / OpenSSH / PGP private key",
        anywhere=True,
    ),
    _p(
        "databricks_token",
        _B + rb"dapi[0-9a-f]{32}(?:-[0-9])?" + _E,
        (b"dapi",),
        ("cloud.databricks.com", "azuredatabricks.net", "gcp.databricks.com"),
        "Databricks personal access token",
    ),
    _p(
        "perplexity_api_key",
        _B + rb"pplx-[A-Za-z0-9]{48}" + _E,
        (b"pplx-",),
        ("perplexity.ai",),
        "Perplexity API key",
    ),
    _p(
        "groq_api_key",
        _B + rb"gsk_[A-Za-z0-9]{52}" + _E,
        (b"gsk_",),
        ("groq.com",),
        "Groq API key",
    ),
    _p(
        "xai_api_key",
        _B + rb"xai-[A-Za-z0-9]{80}" + _E,
        (b"xai-",),
        ("x.ai",),
        "xAI API key",
    ),
    _p(
        "linear_api_key",
        _B + rb"lin_api_[A-Za-z0-9]{40}" + _E,
        (b"lin_api_",),
        ("linear.app",),
        "Linear API key",
    ),
    _p(
        "telegram_bot_token",
        rb"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}" + _E_DASH,
        (b":AA",),
        ("telegram.org",),
        "Telegram bot token",
    ),
    _p(
        "discord_bot_token",
        _B + rb"[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}" + _E_DASH,
        (),
        ("discord.com", "discordapp.com"),
        "Discord bot token",
    ),
    _p(
        "digitalocean_token",
        _B + rb"do[por]_v1_[a-f0-9]{64}" + _E,
        (b"dop_v1_", b"doo_v1_", b"dor_v1_"),
        ("digitalocean.com",),
        "DigitalOcean personal, OAuth and refresh tokens",
    ),
    _p(
        "shopify_token",
        _B + rb"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + _E,
        (b"shpat_", b"shpca_", b"shppa_", b"shpss_"),
        ("myshopify.com", "shopify.com"),
        "Shopify access tokens and shared secrets",
    ),
    _p(
        "azure_storage_key",
        rb"AccountKey=[A-Za-z0-9+/]{86}==",
        (b"AccountKey=",),
        ("core.windows.net",),
        "Azure storage account key in a connection string",
    ),
)
