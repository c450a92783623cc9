from __future__ import annotations

import base64
import random

import pytest

from agentcage.config.schema import DnsConfig
from agentcage.dns.names import zone_of
from agentcage.dns.tunnel import digit_share, encoded_run, name_reason
from agentcage.policy.shannon import shannon_entropy

CFG = DnsConfig()

# Names real agents resolve, under the entry that would allow them. None may be flagged.
NORMAL = [
    ("d1a2b3c4d5e6f7.cloudfront.net", "cloudfront.net"),
    ("d3k81ch9hvuctc.cloudfront.net", "cloudfront.net"),
    ("my-bucket.s3.us-east-1.amazonaws.com", "amazonaws.com"),
    (
        "company-production-application-logs-archive-us-east.s3.dualstack.us-east-1.amazonaws.com",
        "amazonaws.com",
    ),
    (
        "k8s-default-myingres-1a2b3c4d5e-1234567890.us-east-1.elb.amazonaws.com",
        "amazonaws.com",
    ),
    ("abcdef1234.execute-api.eu-west-1.amazonaws.com", "amazonaws.com"),
    ("a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com", "amazonaws.com"),
    ("sts.amazonaws.com", "amazonaws.com"),
    ("4f9c2b7e1d3a5c8b0e6f2a4d7c9b1e3f.lambda-url.us-east-1.on.aws", "on.aws"),
    ("0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com", "cloudflarestorage.com"),
    ("3f2504e0-4f89-11d3-9a0c-0305e82c3301.privatelink.blob.core.windows.net", "windows.net"),
    ("mycompanyproductioncontainerregistry.azurecr.io", "azurecr.io"),
    ("storageaccountname123.blob.core.windows.net", "windows.net"),
    ("registry-1.docker.io", "docker.io"),
    ("production.cloudflare.docker.com", "docker.com"),
    ("registry.npmjs.org", "npmjs.org"),
    ("files.pythonhosted.org", "pythonhosted.org"),
    ("objects.githubusercontent.com", "githubusercontent.com"),
    ("codeload.github.com", "github.com"),
    ("api.anthropic.com", "anthropic.com"),
    ("generativelanguage.googleapis.com", "googleapis.com"),
    ("my-service-abc123xyz-uc.a.run.app", "run.app"),
    ("my-app-git-feature-branch-name-myteam-1a2b3c4d.vercel.app", "vercel.app"),
    ("o123456.ingest.us.sentry.io", "sentry.io"),
    ("_dmarc.example.com", "example.com"),
    ("_acme-challenge.www.example.com", "example.com"),
    ("_https._tcp.example.com", "example.com"),
    ("xn--bcher-kva.example.com", "example.com"),
    ("rr3---sn-q4fl6nd6.googlevideo.com", "googlevideo.com"),
]


@pytest.mark.parametrize(("qname", "entry"), NORMAL)
def test_normal_names_are_never_flagged(qname: str, entry: str) -> None:
    zone = zone_of(qname, entry)
    assert name_reason(qname, zone, CFG) is None


def _b32(rng: random.Random, size: int) -> str:
    return base64.b32encode(rng.randbytes(64)).decode().lower()[:size]


def test_full_size_tunnel_labels_are_always_flagged() -> None:
    rng = random.Random(7)
    for _ in range(200):
        for label in (_b32(rng, 63), rng.randbytes(32).hex()[:63]):
            qname = f"{label}.t.evil.workers.dev"
            assert name_reason(qname, "evil.workers.dev", CFG) is not None


def test_medium_tunnel_labels_are_mostly_flagged() -> None:
    # One flagged query is enough to act on a zone; most must be caught.
    rng = random.Random(11)
    labels = [_b32(rng, 40) for _ in range(500)]
    caught = sum(encoded_run(label, CFG) is not None for label in labels)
    assert caught / len(labels) > 0.8


def test_hex_is_caught_by_its_digits() -> None:
    run = "3f2504e04f8911d39a0c0305e82c3301aabbccdd"
    assert shannon_entropy(run) < CFG.random_run_entropy
    assert digit_share(run) >= CFG.random_run_digits
    assert encoded_run(run, CFG) == run


def test_long_name_below_the_zone_is_flagged() -> None:
    data = ".".join(["abcdefghij-klmnop"] * 7)  # low entropy, but 125 characters
    reason = name_reason(f"{data}.evil.workers.dev", "evil.workers.dev", CFG)
    assert reason is not None and "characters below evil.workers.dev" in reason


def test_thresholds_come_from_config() -> None:
    strict = DnsConfig(random_run_length=12, random_run_entropy=3.0)
    assert name_reason("d3k81ch9hvuctc.cloudfront.net", "cloudfront.net", strict) is not None
