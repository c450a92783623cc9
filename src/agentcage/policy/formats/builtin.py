"""Built-in credential formats: the best-known cloud, AI and code-hosting keys here,
the rest by kind in `services.py`, `platforms.py`, `commerce.py`, `ai_services.py`,
`key_material.py` and `financial.py`; `BUILTIN_PATTERNS` is the whole catalogue.

See `pattern.py` for the rules every format follows.
"""

from __future__ import annotations

from agentcage.policy.formats.ai_services import AI_PATTERNS
from agentcage.policy.formats.commerce import COMMERCE_PATTERNS
from agentcage.policy.formats.financial import FINANCIAL_PATTERNS
from agentcage.policy.formats.key_material import KEY_MATERIAL_PATTERNS
from agentcage.policy.formats.named_values import NAMED_VALUE_PATTERNS
from agentcage.policy.formats.pattern import (
    END,
    END_DASH,
    MIN_RUN,
    START,
    TOKEN_ALPHABET,
    CredentialPattern,
    make,
)
from agentcage.policy.formats.platforms import PLATFORM_PATTERNS
from agentcage.policy.formats.services import SERVICE_PATTERNS

__all__ = ["BUILTIN_PATTERNS", "MIN_RUN", "TOKEN_ALPHABET", "CredentialPattern"]

CORE_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "aws_access_key_id",
        rb"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Z0-9])",
        (b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
        ("amazonaws.com",),
        "AWS access key ID",
    ),
    make(
        "aws_secret_access_key",
        # `\\?` lets the quotes be JSON-escaped: a credentials file pasted into a JSON string.
        rb"(?i:secret_?access_?key|secret-access-key)(?:\\?[\"'])?\s{0,3}[:=]\s{0,3}(?:\\?[\"'])?"
        rb"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey", b"ecret-access-key"),
        ("amazonaws.com",),
        "AWS secret access key next to its name",
    ),
    make(
        "github_token",
        # No boundary before: `gh?_` ends no word, and `xghp_...` is still the token.
        rb"gh[pousr]_[A-Za-z0-9]{30,251}" + END,
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
        ("github.com", "githubusercontent.com"),
        "GitHub classic personal access, OAuth, user-to-server, server and refresh tokens",
    ),
    make(
        "github_fine_grained_pat",
        START + rb"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}" + END,
        (b"github_pat_",),
        ("github.com", "githubusercontent.com"),
        "GitHub fine-grained personal access token",
    ),
    make(
        "anthropic_api_key",
        START + rb"sk-ant-[a-z]{2,8}[0-9]{2}-[A-Za-z0-9_-]{80,120}" + END_DASH,
        (b"sk-ant-",),
        ("anthropic.com",),
        "Anthropic API, admin and OAuth keys (sk-ant-...)",
    ),
    make(
        "openai_project_key",
        START + rb"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,200}" + END_DASH,
        (b"sk-proj-", b"sk-svcacct-", b"sk-admin-"),
        ("openai.com",),
        "OpenAI project, service-account and admin keys",
    ),
    make(
        "openai_api_key",
        START + rb"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + END_DASH,
        (b"T3BlbkFJ",),
        ("openai.com",),
        "OpenAI legacy user key (sk-...T3BlbkFJ...)",
    ),
    make(
        "openrouter_api_key",
        START + rb"sk-or-v1-[0-9a-f]{64}" + END,
        (b"sk-or-v1-",),
        ("openrouter.ai",),
        "OpenRouter API key",
    ),
    make(
        "slack_token",
        START + rb"xox[abposre]-[0-9]{6,15}-[A-Za-z0-9-]{8,200}" + END,
        (b"xoxa-", b"xoxb-", b"xoxp-", b"xoxo-", b"xoxs-", b"xoxr-", b"xoxe-"),
        ("slack.com",),
        "Slack bot, user, app and refresh tokens",
    ),
    make(
        "slack_app_token",
        START + rb"xapp-[0-9]-[A-Z0-9]{6,20}-[0-9]{6,20}-[a-f0-9]{32,80}" + END,
        (b"xapp-",),
        ("slack.com",),
        "Slack app-level token",
    ),
    make(
        "slack_webhook_url",
        rb"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,200}",
        (b"hooks.slack.com",),
        ("slack.com",),
        "Slack incoming-webhook URL",
    ),
    make(
        "stripe_secret_key",
        START + rb"(?:sk|rk)_live_[A-Za-z0-9_]{20,250}" + END,
        (b"sk_live_", b"rk_live_"),
        ("stripe.com",),
        "Stripe live secret and restricted keys",
    ),
    make(
        "google_api_key",
        START + rb"AIza[0-9A-Za-z_-]{35}" + END_DASH,
        (b"AIza",),
        ("googleapis.com", "google.com"),
        "Google API key",
    ),
    make(
        "google_oauth_token",
        START + rb"ya29\.[0-9A-Za-z_-]{30,2000}" + END_DASH,
        (b"ya29.",),
        ("googleapis.com", "google.com"),
        "Google OAuth access token",
    ),
    make(
        "gitlab_token",
        START + rb"gl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|oas)-[A-Za-z0-9_-]{20,64}" + END_DASH,
        (b"glpat-", b"gldt-", b"glrt-", b"glcbt-", b"glptt-", b"glft-", b"glimt-", b"glagent-"),
        ("gitlab.com",),
        "GitLab personal, deploy, runner and other tokens",
    ),
    make(
        "npm_token",
        START + rb"npm_[A-Za-z0-9]{36}" + END,
        (b"npm_",),
        ("npmjs.org", "npmjs.com"),
        "npm access token",
    ),
    make(
        "pypi_token",
        START + rb"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}" + END_DASH,
        (b"pypi-AgEIcHlwaS5vcmc",),
        ("pypi.org",),
        "PyPI API token",
    ),
    make(
        "huggingface_token",
        START + rb"(?:hf_|api_org_)[A-Za-z0-9]{34}" + END,
        (b"hf_", b"api_org_"),
        ("huggingface.co", "hf.co"),
        "Hugging Face user and organization access tokens",
    ),
    make(
        "twilio_api_key",
        START + rb"SK[0-9a-f]{32}" + END,
        (b"SK",),
        ("twilio.com",),
        "Twilio API key SID",
    ),
    make(
        "sendgrid_api_key",
        START + rb"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,64}" + END_DASH,
        (b"SG.",),
        ("sendgrid.com", "sendgrid.net"),
        "SendGrid API key",
    ),
    make(
        "mailgun_api_key",
        START + rb"key-[0-9a-f]{32}" + END,
        (b"key-",),
        ("mailgun.net", "mailgun.org"),
        "Mailgun API key",
    ),
    make(
        "databricks_token",
        START + rb"dapi[0-9a-f]{32}(?:-[0-9])?" + END,
        (b"dapi",),
        ("cloud.databricks.com", "azuredatabricks.net", "gcp.databricks.com"),
        "Databricks personal access token",
    ),
    make(
        "perplexity_api_key",
        START + rb"pplx-[A-Za-z0-9]{48}" + END,
        (b"pplx-",),
        ("perplexity.ai",),
        "Perplexity API key",
    ),
    make(
        "groq_api_key",
        START + rb"gsk_[A-Za-z0-9]{52}" + END,
        (b"gsk_",),
        ("groq.com",),
        "Groq API key",
    ),
    make(
        "xai_api_key",
        START + rb"xai-[A-Za-z0-9]{80}" + END,
        (b"xai-",),
        ("x.ai",),
        "xAI API key",
    ),
    make(
        "linear_api_key",
        START + rb"lin_api_[A-Za-z0-9]{40}" + END,
        (b"lin_api_",),
        ("linear.app",),
        "Linear API key",
    ),
    make(
        "telegram_bot_token",
        rb"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}" + END_DASH,
        (b":AA",),
        ("telegram.org",),
        "Telegram bot token",
    ),
    make(
        "discord_bot_token",
        START + rb"[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}" + END_DASH,
        (),
        ("discord.com", "discordapp.com"),
        "Discord bot token",
    ),
    make(
        "digitalocean_token",
        START + rb"do[por]_v1_[a-f0-9]{64}" + END,
        (b"dop_v1_", b"doo_v1_", b"dor_v1_"),
        ("digitalocean.com",),
        "DigitalOcean personal, OAuth and refresh tokens",
    ),
    make(
        "shopify_token",
        START + rb"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + END,
        (b"shpat_", b"shpca_", b"shppa_", b"shpss_"),
        ("myshopify.com", "shopify.com"),
        "Shopify access tokens and shared secrets",
    ),
    make(
        "azure_storage_key",
        rb"AccountKey=[A-Za-z0-9+/]{86}==",
        (b"AccountKey=",),
        ("core.windows.net",),
        "Azure storage account key in a connection string",
    ),
)

BUILTIN_PATTERNS: tuple[CredentialPattern, ...] = (
    CORE_PATTERNS
    + SERVICE_PATTERNS
    + PLATFORM_PATTERNS
    + COMMERCE_PATTERNS
    + AI_PATTERNS
    + KEY_MATERIAL_PATTERNS
    + FINANCIAL_PATTERNS
    # Last: a value with a format of its own is reported as that format.
    + NAMED_VALUE_PATTERNS
)
