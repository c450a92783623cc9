"""A cage on Kubernetes: manifests rendered from the cage's unit model (docs/kubernetes.md)."""
