"""Built-in credential formats of developer services: registries, observability, infra.

See `pattern.py` for the rules every format follows. Formats with no public home
(Vault, age) have no hosts: allow them where they belong with
`secrets.allow_to_domains`.
"""

from __future__ import annotations

from agentcage.policy.formats.pattern import END, END_DASH, START, CredentialPattern, make

SERVICE_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "docker_hub_pat",
        START + rb"dckr_pat_[A-Za-z0-9_-]{27}" + END_DASH,
        (b"dckr_pat_",),
        ("docker.io", "docker.com"),
        "Docker Hub personal access token",
    ),
    make(
        "vault_token",
        START + rb"hv[sb]\.[A-Za-z0-9_-]{90,300}" + END_DASH,
        (b"hvs.", b"hvb."),
        (),
        "HashiCorp Vault service or batch token",
    ),
    make(
        "onepassword_service_token",
        START + rb"ops_eyJ[A-Za-z0-9+/=_-]{100,2000}",
        (b"ops_eyJ",),
        ("1password.com",),
        "1Password service-account token",
    ),
    make(
        "sentry_auth_token",
        START + rb"(?:sntrys_eyJ[A-Za-z0-9+/=_-]{50,500}|sntryu_[a-f0-9]{64}" + END + rb")",
        (b"sntrys_", b"sntryu_"),
        ("sentry.io",),
        "Sentry organization and user auth tokens",
    ),
    make(
        "grafana_token",
        START + rb"(?:glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})" + END,
        (b"glsa_", b"glc_"),
        ("grafana.net", "grafana.com"),
        "Grafana service-account and Grafana Cloud tokens",
    ),
    make(
        "tailscale_key",
        START + rb"tskey-[a-z]{3,8}-[A-Za-z0-9]{8,20}-[A-Za-z0-9]{20,40}" + END,
        (b"tskey-",),
        ("tailscale.com",),
        "Tailscale auth, API and OAuth client keys",
    ),
    make(
        "supabase_token",
        START + rb"sbp_[a-f0-9]{40}" + END,
        (b"sbp_",),
        ("supabase.co", "supabase.com"),
        "Supabase personal access token",
    ),
    make(
        "replicate_api_token",
        START + rb"r8_[A-Za-z0-9]{37}" + END,
        (b"r8_",),
        ("replicate.com",),
        "Replicate API token",
    ),
    make(
        "age_secret_key",
        rb"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}" + END,
        (b"AGE-SECRET-KEY-1",),
        (),
        "age encryption private key",
    ),
    make(
        "postman_api_key",
        START + rb"PMAK-[a-f0-9]{24}-[a-f0-9]{34}" + END,
        (b"PMAK-",),
        ("getpostman.com", "postman.com"),
        "Postman API key",
    ),
    make(
        "figma_token",
        START + rb"figd_[A-Za-z0-9_-]{40}" + END_DASH,
        (b"figd_",),
        ("figma.com",),
        "Figma personal access token",
    ),
    make(
        "notion_token",
        START + rb"ntn_[A-Za-z0-9]{40,50}" + END,
        (b"ntn_",),
        ("notion.com", "notion.so"),
        "Notion integration token",
    ),
    make(
        "square_token",
        START + rb"sq0(?:atp-[A-Za-z0-9_-]{22}|csp-[A-Za-z0-9_-]{43})" + END_DASH,
        (b"sq0atp-", b"sq0csp-"),
        ("squareup.com",),
        "Square access token and OAuth secret",
    ),
    make(
        "doppler_token",
        START + rb"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}" + END,
        (b"dp.pt.", b"dp.st.", b"dp.sa.", b"dp.ct.", b"dp.scim.", b"dp.audit."),
        ("doppler.com",),
        "Doppler personal, service and CLI tokens",
    ),
    make(
        "pulumi_token",
        START + rb"pul-[a-f0-9]{40}" + END,
        (b"pul-",),
        ("pulumi.com",),
        "Pulumi access token",
    ),
    make(
        "new_relic_user_key",
        START + rb"NRAK-[A-Z0-9]{27}" + END,
        (b"NRAK-",),
        ("newrelic.com",),
        "New Relic user API key",
    ),
    make(
        "atlassian_api_token",
        START + rb"ATATT3[A-Za-z0-9_=-]{150,300}" + END_DASH,
        (b"ATATT3",),
        ("atlassian.net", "atlassian.com"),
        "Atlassian (Jira, Confluence) API token",
    ),
)
