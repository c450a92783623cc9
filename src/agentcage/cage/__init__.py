"""Cages on Podman: topology, quadlets, images, lifecycle, verify and deployment state."""
