"""Sections that configure the inspector chain: domains, secrets, payload checks, limits."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentcage.config.base import Model
from agentcage.config.constants import ECHO_PLACES
from agentcage.config.fields import ByteSize, Domain, EnvName, Text

Action = Literal["block", "flag"]
PatternName = str
_PATTERN_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_INSPECTOR_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
BUILTIN_INSPECTORS = ("domain", "secrets", "body-size", "entropy", "content-type", "rate-limit")
# Where in a request a real value may be written. The URL path and host never are.
Place = Literal["headers", "query", "body", "websocket"]


MIB = 1024 * 1024


class SecretInjection(Model):
    """One secret the agent sees only as a placeholder."""

    env: EnvName = Field(description="Name of the real secret (env var or secret file name).")
    placeholder: Text | None = Field(
        None, min_length=5, description="What the agent sees; default `{{ENV}}`."
    )
    inject_to: list[Domain] = Field(
        min_length=1,
        description="Hosts (and their subdomains) that receive the real value. A placeholder "
        "sent anywhere else is blocked.",
    )
    places: list[Place] = Field(
        default_factory=lambda: list[Place](["headers"]),
        min_length=1,
        description="Where in a request to those hosts the real value is written: `headers` "
        "(header values, also inside `Authorization: Basic`), `query` (the URL's query), "
        "`body` (uncompressed request bodies, raw or form-encoded), `websocket` (the "
        "agent's WebSocket messages). Never the URL path. A placeholder in any other "
        "place is forwarded unchanged. `query`, `body` and `websocket` carry a risk: a "
        "host that stores what it receives can hand the value back in pieces or "
        "compressed (`config validate` warns).",
    )

    @model_validator(mode="after")
    def _default_placeholder(self) -> SecretInjection:
        if self.placeholder is None:
            object.__setattr__(self, "placeholder", "{{" + self.env + "}}")
        return self

    @property
    def token(self) -> str:
        assert self.placeholder is not None
        return self.placeholder

    def warnings(self) -> list[tuple[str, str]]:
        """(key, message) for each allowed but risky setting of this rule."""
        risky = [place for place in dict.fromkeys(self.places) if place in ECHO_PLACES]
        if not risky:
            return []
        listed = ", ".join(f"`{place}`" for place in risky)
        return [
            (
                "places",
                f"{listed} lets the real {self.env} be written where "
                f"{', '.join(self.inject_to)} may store it; a host that stores and echoes "
                "what it receives can hand the value back in forms the response scrubber "
                "cannot see (transformed, or compressed and read in pieces); prefer "
                "`headers` where the API allows it",
            )
        ]


class ExtraPattern(Model):
    """A secret format of your own: a regex, or the exact value of an env var."""

    name: str = Field(pattern=_PATTERN_NAME)
    pattern: Text | None = Field(None, max_length=1000, description="Regular expression.")
    env: EnvName | None = Field(None, description="Env var whose value is matched literally.")

    @model_validator(mode="after")
    def _one_source(self) -> ExtraPattern:
        if (self.pattern is None) == (self.env is None):
            raise ValueError("give exactly one of `pattern` or `env`")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from exc
        return self


class KnownSecret(Model):
    """A value that must never leave, given by env var or file (its value is never in config)."""

    env: EnvName | None = Field(None, description="Env var (or secret) holding the value.")
    file: Text | None = Field(
        None, description="File holding the value (relative to the config file's folder)."
    )
    allow_to: list[Domain] = Field(
        default_factory=list, description="Hosts (and subdomains) it may be sent to; default none."
    )

    @model_validator(mode="after")
    def _one_source(self) -> KnownSecret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` or `file`")
        return self

    @property
    def label(self) -> str:
        return self.env or f"file:{self.file}"


CanaryKind = Literal[
    "anthropic", "openai", "aws", "aws-secret", "github", "gitlab", "slack", "stripe", "generic"
]


class Canary(Model):
    """A decoy credential handed to the agent; any use of it anywhere is blocked (critical)."""

    env: EnvName = Field(description="Env var the agent sees the decoy in.")
    kind: CanaryKind = Field("generic", description="Format of the decoy (a real key's shape).")
    value: Text | None = Field(
        None,
        min_length=8,
        description="The decoy itself; default: generated deterministically for this cage.",
    )


class SplitWindowConfig(Model):
    """Per-destination memory that catches a secret sent in pieces across requests."""

    max_pieces: int = Field(256, ge=1, le=100_000, description="Pieces kept per destination.")
    max_age_seconds: float = Field(600, gt=0, le=86400, description="How long a piece is kept.")
    max_destinations: int = Field(1024, ge=1, le=1_000_000, description="Destinations tracked.")
    min_piece: int = Field(
        4,
        ge=3,
        le=64,
        description="Shorter pieces only extend a run of pieces sent in order to one site.",
    )
    coverage: float = Field(
        0.8, gt=0, le=1, description="Fraction of a secret that, once sent, counts as sent."
    )


DEFAULT_DECODE_BUDGET = 32 << 20


class SecretsConfig(Model):
    """The secret scanner: credential formats that must not leave except to their provider."""

    enabled: bool = Field(True, description="Scan requests and frames for credentials.")
    builtin_allow_to_domains: bool = Field(
        True, description="Let each built-in credential format reach its own provider's hosts."
    )
    allow_to_domains: dict[str, list[Domain]] = Field(
        default_factory=dict,
        description="Pattern name -> hosts it may be sent to (overrides the built-in entry).",
    )
    extra_patterns: list[ExtraPattern] = Field(default_factory=list)
    documentation_values: Literal["skip", "block"] = Field(
        "skip",
        description="Values shaped like a credential that grant nothing: published examples "
        "(AKIAIOSFODNN7EXAMPLE, test card numbers, test-vector seed phrases) and fillers "
        "(ghp_xxxx..., sk-ABCDEF..., a JWT signed `fakesig`). `skip` lets them pass, as "
        "code and docs sent to an LLM are full of them; `block` treats them as the "
        "credentials they imitate, and blocks stand-ins of the formats only flagged when "
        "real (JWTs, Bitcoin addresses).",
    )
    named_fields: Literal["off", "flag", "block"] = Field(
        "flag",
        description="A value with no format of its own in a credential field: a JSON key "
        "outside any string, a form or query parameter or a header named `password`, "
        "`client_secret`, `api_key`, `token`... That is also how an agent logs in or calls "
        "an API, so `flag` (audit, forward) is the default; `block` refuses it toward any "
        "host `allow_to_domains.secret_field` does not name; `off` does not look. (Values "
        "under an environment variable's name, `DB_PASSWORD`, are always blocked.)",
    )
    known: list[KnownSecret] = Field(
        default_factory=list,
        description="Exact values to find in any encoding (base64, hex, gzip, split, ...), "
        "beside the injected secrets and placeholders, which are always protected.",
    )
    canaries: list[Canary] = Field(default_factory=list, description="Decoy credentials.")
    min_known_length: int = Field(
        8, ge=6, le=256, description="Known values shorter than this are not matched."
    )
    split_window: SplitWindowConfig = Field(
        default_factory=SplitWindowConfig, description="Split-secret detection window."
    )
    decode_budget: ByteSize = Field(
        DEFAULT_DECODE_BUDGET,
        ge=1 << 20,
        le=1 << 30,
        description="Bytes the leak inspector may decode from one message (decompressed "
        "bodies, archive members, a git push's objects, base64 and other layers, all "
        "together). A message with more left undecoded is blocked (`undecoded-layers`): "
        "raise this for pushes or uploads larger than it, at the cost of the proxy's "
        "memory while it reads them.",
    )

    @field_validator("allow_to_domains", mode="after")
    @classmethod
    def _names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if not re.fullmatch(_PATTERN_NAME, name):
                raise ValueError(f"{name!r} is not a pattern name")
        return value


class EntropyConfig(Model):
    """Shannon entropy of bodies, URL path segments and query values (bits per byte)."""

    threshold: float = Field(7.0, ge=0, le=8, description="Body entropy that triggers.")
    min_body_bytes: int = Field(256, ge=1, description="Smaller bodies are not measured.")
    segment_threshold: float = Field(
        4.8, ge=0, le=8, description="Entropy that triggers on a URL path segment/query value."
    )
    segment_min_length: int = Field(48, ge=8, description="Shorter segments are not measured.")
    action: Action = "flag"
    exempt_content_types: list[Text] = Field(
        default_factory=lambda: [
            "image/",
            "audio/",
            "video/",
            "font/",
            "application/gzip",
            "application/zip",
            "application/zstd",
            "application/octet-stream",
            "application/x-git-",
        ],
        description="Content-type prefixes that are legitimately high-entropy.",
    )


class UrlDataConfig(Model):
    """Data carried in host names and URLs rather than in a body (see docs/detection.md)."""

    action: Action = Field(
        "block", description="What to do with a request whose host name or URL carries data."
    )
    max_data_labels: int = Field(
        16,
        ge=1,
        le=10_000,
        description="Distinct id-like labels (letters and digits, 8+) allowed under one "
        "registrable domain within `window_seconds`; more is a tunnel sending data a label "
        "at a time.",
    )
    window_seconds: float = Field(
        600, gt=0, le=86400, description="How long a label counts toward `max_data_labels`."
    )
    path_tokens: Literal["blocklist-mode", "always", "never"] = Field(
        "blocklist-mode",
        description="When random-looking tokens (24+ characters of mixed case and digits) in "
        "a URL path count as data: `blocklist-mode` only when every domain is reachable (in "
        "allowlist mode the listed hosts are trusted with the ids in their URLs), `always`, "
        "or `never`.",
    )
    max_percent_layers: int = Field(
        2,
        ge=1,
        le=8,
        description="Percent-encoding layers a URL may have; more only hide what it carries.",
    )


class ContentTypeConfig(Model):
    """Content-type mismatch (binary sent as text) and embedded base64 blobs."""

    entropy_ceiling: float = Field(6.5, ge=0, le=8, description="Max entropy for text types.")
    detect_base64: bool = True
    base64_min_len: int = Field(256, ge=16, description="Shortest base64 run that triggers.")
    action: Action = "flag"


class InspectorSpec(Model):
    """A custom inspector, or a built-in one named to configure it (0.3.x style)."""

    name: str = Field(pattern=_INSPECTOR_NAME)
    path: Text | None = Field(None, description="Python file holding the inspector class.")
    module: Text | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$",
        description="Importable `package.module[:Class]` holding the inspector.",
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Passed to the inspector.")

    @model_validator(mode="after")
    def _source(self) -> InspectorSpec:
        builtin = self.name in BUILTIN_INSPECTORS
        if builtin and (self.path or self.module):
            raise ValueError(f"{self.name!r} is built in; remove `path`/`module` or rename it")
        if not builtin and (self.path is None) == (self.module is None):
            raise ValueError(
                f"custom inspector {self.name!r} needs exactly one of `path` or `module` "
                f"(built-in names: {', '.join(BUILTIN_INSPECTORS)})"
            )
        return self


class RequestBudget(Model):
    """A token bucket of requests: `per_second` refill, `burst` capacity; 0 in either disables."""

    per_second: float = Field(ge=0, description="Requests a second, sustained.")
    burst: int = Field(ge=0, description="Requests at once before the sustained rate applies.")

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and self.burst > 0


class ByteBudget(Model):
    """A token bucket of bytes: `per_second` refill, `burst` capacity; 0 in either disables."""

    per_second: ByteSize = Field(description="Bytes a second, sustained (`2MiB`).")
    burst: ByteSize = Field(description="Bytes at once before the sustained rate applies.")

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and self.burst > 0


class RateLimitConfig(Model):
    """Budgets aimed at exfiltration, not at downloads; over one, the agent gets 429.

    Requests without a body (a package manager's downloads) have a generous
    ceiling; requests that carry a body and the bytes the agent sends are what
    data leaves in, so they have the tighter budgets. See docs/proxy.md for the
    measurements behind the defaults.
    """

    reads: RequestBudget = Field(
        default_factory=lambda: RequestBudget(per_second=500, burst=5000),
        description="Requests without a body (GET, HEAD, ...), per host; default 500/s, "
        "burst 5000 (an `npm ci` of 1,500 packages fits in the burst).",
    )
    writes: RequestBudget = Field(
        default_factory=lambda: RequestBudget(per_second=20, burst=200),
        description="Requests that carry a body, per host; default 20/s, burst 200.",
    )
    upload: ByteBudget = Field(
        default_factory=lambda: ByteBudget(per_second=2 * MIB, burst=128 * MIB),
        description="Bytes the agent sends to one host: request line, headers, body and "
        "WebSocket messages; default 2MiB/s, burst 128MiB.",
    )
    cage_upload: ByteBudget = Field(
        default_factory=lambda: ByteBudget(per_second=4 * MIB, burst=256 * MIB),
        description="Bytes the agent sends to all hosts together; default 4MiB/s, burst 256MiB.",
    )
    requests_per_second: float | None = Field(
        None,
        ge=0,
        description="0.3.x: one bucket per host over every request, downloads included. "
        "Unset by default; when set (with `burst`), it applies on top of the budgets above.",
    )
    burst: int | None = Field(None, ge=0, description="0.3.x: capacity of that bucket.")

    @property
    def legacy(self) -> RequestBudget | None:
        """The 0.3.x every-request bucket, if the config sets it."""
        if self.requests_per_second is None and self.burst is None:
            return None
        rate = 10.0 if self.requests_per_second is None else self.requests_per_second
        return RequestBudget(per_second=rate, burst=50 if self.burst is None else self.burst)

    @property
    def enabled(self) -> bool:
        budgets = (self.reads, self.writes, self.upload, self.cage_upload, self.legacy)
        return any(budget is not None and budget.enabled for budget in budgets)

    def warnings(self) -> list[tuple[str, str]]:
        legacy = self.legacy
        if legacy is None or not legacy.enabled:
            return []
        return [
            (
                "requests_per_second",
                f"caps every request at {legacy.per_second:g}/s (burst {legacy.burst}) per "
                "host, package downloads included: an `npm ci` makes hundreds of requests "
                "to one registry in seconds. The budgets `reads`, `writes` and `upload` "
                "already bound what can leave; remove `requests_per_second` and `burst` "
                "unless you need them",
            )
        ]
