"""MicroVMs for `isolation: firecracker`: one machine model, two monitors, one guest image."""
