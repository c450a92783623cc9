"""What the proxy's CA directory (mitmproxy's confdir) holds besides the CA itself.

mitmproxy writes its DH parameters into the confdir the first time it loads the CA, and
the proxy writes the upstream trust bundle (`--upstream-ca`) there. On Kubernetes that
directory is a read-only Secret mount (docs/kubernetes.md): the DH parameters are shipped
in the Secret (mitmproxy's own defaults), and the bundle goes to a private temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DHPARAM = "mitmproxy-dhparam.pem"
UPSTREAM_BUNDLE = "upstream-trust.pem"


def dhparam_pem() -> bytes:
    from mitmproxy.certs import DEFAULT_DHPARAM

    return DEFAULT_DHPARAM


def write_upstream_bundle(ca_dir: Path, text: str) -> Path:
    """`text` in the CA directory or, where that cannot be written, in a file of our own."""
    bundle = ca_dir / UPSTREAM_BUNDLE
    try:
        bundle.write_text(text)
    except OSError:
        handle, name = tempfile.mkstemp(prefix="agentcage-", suffix=f"-{UPSTREAM_BUNDLE}")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        return Path(name)
    return bundle
