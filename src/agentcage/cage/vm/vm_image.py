"""The image the microVM's host container runs: the runtime image plus QEMU and passt.

One container per microVM cage holds the monitor, passt (the guest's one NIC, rootless)
and the owner of the guest agent channel (vm_run.py), which needs agentcage itself: so
the image is the runtime image (images/runtime/Containerfile, the same venv and wheels)
built on a Debian base that also has `qemu-system-x86`, `passt` and `e2fsprogs` (the
secrets drive is made inside the container, in its memory), and trixie's `virtiofsd` with
the libraries it links in its own folder (virtiofs.py: the agent's writable bind mounts).
Built registry-free from Debian packages, like the `debian` base of the sidecars, and
tagged by content.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentcage.cage.image_inputs import digest, source_root
from agentcage.cage.images import DEBIAN_SUITE, RUNTIME_PACKAGES, ImageBuilder
from agentcage.cage.vm.virtiofs import image_hook, stage_virtiofsd, virtiofsd_key

VM_PACKAGES = (
    *RUNTIME_PACKAGES, "qemu-system-x86", "passt", "e2fsprogs", "iproute2",
    # A Firecracker cage NATs its guest's TAP out of the container (tap_uplink.py).
    "nftables",
)  # fmt: skip
VM_BASE = "agentcage-vm-base"
VM_IMAGE = "localhost/agentcage-vm"


def vm_image(builder: ImageBuilder) -> str:
    """`localhost/agentcage-vm:<hash>`, built first when missing (a few minutes)."""
    runtime, _ = builder.sidecar_refs("debian")
    # The key names the daemon's pins too, so a changed pin builds a new base.
    base = builder.debian_ref(VM_BASE, (*VM_PACKAGES, virtiofsd_key()))
    ref = f"{VM_IMAGE}:{digest(base, runtime)}"
    if builder.exists(ref):
        return ref
    if not builder.exists(base):

        def import_base() -> None:
            with tempfile.TemporaryDirectory(prefix="agentcage-vm-base-") as tmp:
                staged = Path(tmp) / "virtiofsd"
                stage_virtiofsd(staged)
                builder.import_debian(base, DEBIAN_SUITE, VM_PACKAGES, [image_hook(staged)])

        builder.step(f"{base} from Debian {DEBIAN_SUITE} packages and trixie's virtiofsd",
                     import_base)  # fmt: skip
    root = source_root()

    def build() -> None:
        builder.build_runtime(root, base, builder.wheelhouse(root), ref)

    builder.step(ref, build)
    return ref
