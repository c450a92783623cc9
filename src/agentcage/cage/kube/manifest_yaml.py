"""The cage's objects as one stable YAML stream, for review and for `kube render`."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """The objects as one YAML stream: sorted keys, `---` between objects, no timestamps."""
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # long values (image references, config) stay on one line
    out = []
    for manifest in manifests:
        buffer = io.StringIO()
        yaml.dump(_sorted(manifest), buffer)
        out.append(buffer.getvalue())
    return "---\n" + "---\n".join(out)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)  # a config file stays readable in review
    return value
