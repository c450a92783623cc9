"""Built-in credential formats of payment, messaging and e-mail services.

See `pattern.py` for the rules every format follows.
"""

from __future__ import annotations

from agentcage.policy.formats.pattern import END, END_DASH, START, CredentialPattern, make

COMMERCE_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "stripe_webhook_secret",
        START + rb"whsec_[A-Za-z0-9+/=]{32,100}" + END,
        (b"whsec_",),
        (),
        "Stripe (or Svix) webhook signing secret: it never leaves the receiving server",
    ),
    make(
        "braintree_access_token",
        rb"access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32}",
        (b"access_token$production$",),
        ("braintreegateway.com", "braintree-api.com", "paypal.com"),
        "PayPal Braintree production access token",
    ),
    make(
        "flutterwave_secret_key",
        START + rb"FLWSECK-[a-f0-9]{32}-X" + END,
        (b"FLWSECK-",),
        ("flutterwave.com",),
        "Flutterwave live secret key",
    ),
    make(
        "plaid_access_token",
        START + rb"access-(?:production|development)-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}"
        rb"-[a-f0-9]{4}-[a-f0-9]{12}" + END_DASH,
        (b"access-production-", b"access-development-"),
        ("plaid.com",),
        "Plaid access token",
    ),
    make(
        "paddle_api_key",
        START + rb"pdl_live_apikey_[A-Za-z0-9_]{40,80}" + END,
        (b"pdl_live_apikey_",),
        ("paddle.com",),
        "Paddle live API key",
    ),
    make(
        "mollie_api_key",
        START + rb"live_[A-Za-z0-9]{30}" + END,
        (b"live_",),
        ("mollie.com",),
        "Mollie live API key",
    ),
    make(
        "discord_webhook_url",
        rb"(?:discord|discordapp)\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68}",
        (b"/api/webhooks/",),
        ("discord.com", "discordapp.com"),
        "Discord webhook URL",
    ),
    make(
        "teams_webhook_url",
        rb"webhook\.office\.com/webhookb2/[A-Za-z0-9@/-]{60,300}",
        (b"webhook.office.com/webhookb2/",),
        ("office.com",),
        "Microsoft Teams incoming-webhook URL",
    ),
    make(
        "mailchimp_api_key",
        START + rb"[a-f0-9]{32}-us[0-9]{1,2}" + END,
        (b"-us",),
        ("mailchimp.com", "api.mailchimp.com"),
        "Mailchimp API key",
    ),
    make(
        "brevo_api_key",
        START + rb"x(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16}" + END,
        (b"xkeysib-", b"xsmtpsib-"),
        ("brevo.com", "sendinblue.com"),
        "Brevo (Sendinblue) API and SMTP keys",
    ),
    make(
        "mailersend_api_key",
        START + rb"mlsn\.[a-f0-9]{64}" + END,
        (b"mlsn.",),
        ("mailersend.com",),
        "MailerSend API token",
    ),
    make(
        "resend_api_key",
        START + rb"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}" + END,
        (b"re_",),
        ("resend.com",),
        "Resend API key",
    ),
    make(
        "intercom_token",
        # Intercom access tokens are base64 of "tok:" and a UUID-shaped secret.
        START + rb"dG9rO[A-Za-z0-9+/]{50,80}={0,2}" + END,
        (b"dG9rO",),
        ("intercom.io", "intercom.com"),
        "Intercom access token",
    ),
    make(
        "twitter_bearer_token",
        START + rb"AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{60,140}" + END,
        (b"AAAAAAAAAAAAAAAAAAAAA",),
        ("twitter.com", "x.com"),
        "X (Twitter) API bearer token",
    ),
)
