"""The facade the proxy calls: build the chain from config, then check, inject and scrub.

Chain order for a request (the first block stops it), each built-in inspector one
module of `policy/inspectors/` named for it: `rate-limit` (rate_limit.py),
`domain` (domain.py), `port` (ports.py), `url-data` (url_data.py), `decoding`
(body_decoding.py), `secret-injection`
(secret_injection.py), `secrets` (credential_formats.py, with the formats in
`policy/formats/`), `body-size` (body_size.py), `entropy` (entropy.py),
`content-type` (content_type.py), `leaks` (leaks.py, with the detector in
`policy/leaks/`), then custom inspectors. `Policy.chain.inspectors` is that plain
list. Injection is `policy/injection.py`; responses are scrubbed by
`policy/scrubbing/`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.config.domain_names import normalize_host_entry
from agentcage.errors import PolicyError
from agentcage.policy.canonical_hosts import BadHost
from agentcage.policy.chain import Chain
from agentcage.policy.decoding import DEFAULT_LIMIT
from agentcage.policy.injection import Injector, SecretRule
from agentcage.policy.inspectors.body_decoding import DecodingInspector
from agentcage.policy.inspectors.body_size import BodySizeInspector
from agentcage.policy.inspectors.content_type import ContentTypeInspector
from agentcage.policy.inspectors.credential_formats import CredentialFormatInspector
from agentcage.policy.inspectors.domain import DomainInspector
from agentcage.policy.inspectors.entropy import EntropyInspector
from agentcage.policy.inspectors.leaks import LeakInspector
from agentcage.policy.inspectors.ports import PortInspector
from agentcage.policy.inspectors.rate_limit import RateLimitInspector
from agentcage.policy.inspectors.secret_injection import SecretInjectionInspector
from agentcage.policy.inspectors.url_data import UrlDataInspector
from agentcage.policy.interface import Inspector
from agentcage.policy.payload import Payloads
from agentcage.policy.plugins import load_inspector
from agentcage.policy.scrubbing.echoes import EchoGuard
from agentcage.policy.scrubbing.fragments import FragmentMask
from agentcage.policy.scrubbing.scrubber import ValueScrubber
from agentcage.policy.types import Decision, Frame, Request

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


class Policy:
    """One cage's policy. Build it with `from_config`; it never raises while inspecting."""

    def __init__(
        self,
        chain: Chain,
        domains: DomainInspector,
        injector: Injector,
        scrubber: ValueScrubber,
    ) -> None:
        self.chain = chain
        self._domains = domains
        self._injector = injector
        self._scrubber = scrubber
        self._plain = EchoGuard(scrubber)
        self._guards: dict[tuple[tuple[int, ...], bool], EchoGuard] = {}

    @classmethod
    def from_config(
        cls,
        config: CageConfig,
        secrets: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
    ) -> Policy:
        """Raise `PolicyError` (with a hint) if the config cannot make a working chain.

        `secrets`: env name -> real value for each `secret_injection` rule; a missing
        one blocks its placeholder. `environ` supplies `secrets.extra_patterns[].env`
        values (default: this process's environment). `base_dir` anchors relative
        plugin paths (default: the working directory).
        """
        limit = 4 * config.max_request_body if config.max_request_body else DEFAULT_LIMIT
        payloads = Payloads(limit)
        rules = [SecretRule.from_config(rule, secrets) for rule in config.secret_injection]
        domains = DomainInspector(config.domains.mode, config.domains.entries)
        inspectors: list[Inspector] = []
        if config.rate_limit is not False and config.rate_limit.enabled:
            inspectors.append(RateLimitInspector(config.rate_limit, clock))
        inspectors += [domains, PortInspector(config)]
        if config.url_data is not False:
            blocklist = config.domains.mode == "blocklist"
            inspectors.append(
                UrlDataInspector(config.url_data, blocklist_mode=blocklist, clock=clock)
            )
        inspectors += [
            DecodingInspector(payloads),
            SecretInjectionInspector(rules, payloads),
        ]
        env = os.environ if environ is None else environ
        formats: CredentialFormatInspector | None = None
        if config.secrets.enabled:
            formats = CredentialFormatInspector.from_config(config.secrets, env, payloads, clock)
            inspectors.append(formats)
        if config.max_request_body:
            inspectors.append(BodySizeInspector(config.max_request_body))
        if config.entropy is not False:
            inspectors.append(EntropyInspector(config.entropy, payloads))
        if config.content_type is not False:
            inspectors.append(ContentTypeInspector(config.content_type, payloads))
        if formats is not None:
            # Last of the built-ins: it replaces the one-slot body cache the others share.
            leaks = LeakInspector.from_config(
                config, secrets, env, base_dir=base_dir, payloads=payloads, patterns=formats
            )
            inspectors.append(leaks)
        inspectors += [load_inspector(spec, base_dir) for spec in config.custom_inspectors]
        pairs = [(rule.value, rule.placeholder) for rule in rules if rule.value is not None]
        chain = Chain(inspectors, observe=domains.list_refusal if config.domains.learning else None)
        return cls(chain, domains, Injector(rules), ValueScrubber(pairs))

    def warm(self) -> None:
        """Build now what the first scan would build: the built-in formats' regexes and
        the disguise search (`PatternScanner.warm`). `proxy run` calls it right after
        READY=1, while the agent starts; nothing in it depends on the config, so a config
        that builds cannot fail here, and decisions are the same warmed or not."""
        for inspector in self.chain.inspectors:
            if isinstance(inspector, CredentialFormatInspector):
                inspector.scanner.warm()

    def check_request(self, request: Request) -> Decision:
        """Run the chain on the request as the agent sent it (placeholders, not values)."""
        return self.chain.check_request(request)

    def inject(self, request: Request) -> Request:
        """Swap placeholders for real values (call only after an allow/flag decision)."""
        return self._injector.inject(request)

    def injected(self, before: Request, after: Request) -> tuple[str, ...]:
        """Names (`env`) of the secrets `inject` wrote into `after`; never their values."""
        if after is before:
            return ()
        return tuple(
            rule.env
            for rule in self._injector.rules
            if rule.allows(before.host) and Injector([rule]).inject(before) is not before
        )

    def check_frame(self, frame: Frame) -> Decision:
        return self.chain.check_frame(frame)

    def inject_frame(self, frame: Frame) -> Frame:
        return self._injector.inject_frame(frame)

    def scrub(self, data: bytes) -> bytes:
        """Replace real secret values (raw, URL-encoded, base64, JSON-escaped) by placeholders."""
        return self._scrubber.scrub(data)

    def scrub_text(self, text: str) -> str:
        return self._scrubber.scrub_text(text)

    def echo_guard(self, host: str, *, partial: bool = False) -> EchoGuard:
        """How responses from `host` are scrubbed (`partial`: a 206 response).

        Hosts no secret is injected into get the plain value scrub; the others also
        get packed bodies unpacked and pieces of values masked (`policy/scrubbing/echoes.py`).
        """
        rules = self._injector.rules
        targets = tuple(i for i, rule in enumerate(rules) if rule.allows(host))
        if not targets:
            return self._plain
        key = (targets, partial)
        guard = self._guards.get(key)
        if guard is None:
            pieces = [rules[i] for i in targets if partial or rules[i].stored]
            mask = FragmentMask((rule.value or "").encode() for rule in pieces)
            guard = EchoGuard(self._scrubber, injected=True, partial=partial, mask=mask)
            self._guards[key] = guard
        return guard

    def add_domain(self, entry: str) -> None:
        """Add a domain, IP or CIDR to the configured list (allowlist or blocklist).

        Entries are spelled as in the config file: `*.example.com` and `.example.com`
        mean `example.com`, which matches its subdomains too.
        """
        entry = _host_entry(entry)
        try:
            self._domains.hosts.add(entry)
        except BadHost as exc:
            raise _bad_entry(entry, exc) from exc

    def remove_domain(self, entry: str) -> None:
        """Remove an entry from the list; removing one that is not there does nothing."""
        entry = _host_entry(entry)
        try:
            self._domains.hosts.remove(entry)
        except BadHost as exc:
            raise _bad_entry(entry, exc) from exc


def _host_entry(entry: str) -> str:
    """Normalize a live entry exactly as the config file's `domains` list is normalized."""
    try:
        return normalize_host_entry(entry)
    except ValueError as exc:
        raise _bad_entry(entry, exc) from exc


def _bad_entry(entry: str, exc: Exception) -> PolicyError:
    return PolicyError(
        f"{entry!r} is not a domain, IP address or CIDR block: {exc}",
        hint="give a domain like api.example.com, an IP address like 192.0.2.7 or a "
        "CIDR block like 10.0.0.0/8",
    )
