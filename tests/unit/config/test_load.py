"""Loading configs: good ones normalize, bad ones fail with a located, actionable problem."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentcage.config import InvalidConfig, LoadContext, check_config, load_config, parse_config
from agentcage.config.schema import DEFAULT_MAX_REQUEST_BODY, CageConfig
from agentcage.errors import ConfigError

MINIMAL = "name: demo\ncontainer:\n  image: debian:bookworm-slim\n"


def load(text: str, tmp_path: Path | None = None, **environ: str) -> CageConfig:
    base = tmp_path or Path("/")
    ctx = LoadContext(base_dir=base, environ=environ)
    return parse_config(textwrap.dedent(text), "cage.yaml", context=ctx)


def problems(text: str, tmp_path: Path | None = None, **environ: str) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        load(text, tmp_path, **environ)
    assert info.value.exit_code == 2
    return [str(p) for p in info.value.problems]


def test_minimal_config_gets_secure_defaults() -> None:
    cfg = load(MINIMAL)
    c = cfg.container
    assert (c.user, c.read_only, c.drop_capabilities, c.add_capabilities) == (
        "1000:1000",
        True,
        "ALL",
        [],
    )
    assert c.no_new_privileges and c.security_label_disable
    assert (c.restart, c.restart_sec, c.timeout_start_sec, c.timeout_stop_sec) == (
        "on-failure",
        10,
        120,
        30,
    )
    assert cfg.isolation == "container"
    assert cfg.domains.mode == "allowlist" and cfg.domains.entries == []
    assert cfg.secrets.enabled and cfg.secrets.builtin_allow_to_domains
    assert cfg.max_request_body == DEFAULT_MAX_REQUEST_BODY == 10 * 1024 * 1024
    assert cfg.rate_limit and cfg.rate_limit.legacy is None  # 0.3.x bucket: only when set
    assert (cfg.rate_limit.writes.per_second, cfg.rate_limit.writes.burst) == (20, 200)
    assert cfg.rate_limit.upload.burst == 128 * 1024 * 1024
    assert cfg.firecracker.vcpus == 2 and cfg.firecracker.mem_mb == 2048
    assert cfg.logging.dns_queries == "blocked"
    assert cfg.entropy and cfg.entropy.action == "flag"


def test_microvm_isolation_is_accepted_with_its_settings() -> None:
    cfg = load(MINIMAL + "isolation: firecracker\nfirecracker: {vcpus: 1, mem_mb: 1024}\n")
    assert cfg.isolation == "firecracker"
    assert (cfg.firecracker.vcpus, cfg.firecracker.mem_mb) == (1, 1024)
    assert cfg.firecracker.hypervisor == "auto" and cfg.firecracker.accel == "auto"


def test_microvm_isolation_refuses_writable_binds_on_firecracker_and_ports(
    tmp_path: Path,
) -> None:
    (tmp_path / "ws").mkdir()
    microvm = MINIMAL + f"  volumes: ['{tmp_path}/ws:/ws{{}}']\nisolation: firecracker\n"
    cfg = load(microvm.format(":ro,z"), tmp_path)
    assert cfg.container.bind_mounts[0].options == "ro,z"
    load(MINIMAL.replace("\n  image", "\n  named_volumes: {data: /data}\n  image")
         + "isolation: firecracker\n")  # fmt: skip
    firecracker = microvm + "firecracker: {{hypervisor: firecracker}}\n"
    for writable in ("", ":rw", ":z"):
        load(microvm.format(writable), tmp_path)  # QEMU shares it (virtiofs)
        with pytest.raises(ConfigError, match=r"writable.*named_volumes"):
            load(firecracker.format(writable), tmp_path)
    with pytest.raises(ConfigError, match="cannot publish"):
        load(MINIMAL + "  ports: ['8000:80']\nisolation: firecracker\n")
    container = load(microvm.format("").replace("isolation: firecracker\n", ""), tmp_path)
    assert container.container.bind_mounts[0].options == ""  # container mode writes there


def test_legacy_03x_spellings_are_folded() -> None:
    cfg = load(
        MINIMAL
        + """\
log_allowed: false
domains:
  mode: allowlist
  list: [HTTPBin.org., "*.github.com"]
inspectors:
  - name: entropy
    config: {threshold: 6.5}
  - name: content-type
  - name: body-size
    config: {max_bytes: 2048}
"""
    )
    assert cfg.logging.allowed_requests is False
    assert cfg.domains.entries == ["httpbin.org", "github.com"]
    assert cfg.entropy and cfg.entropy.threshold == 6.5
    assert cfg.max_request_body == 2048
    assert cfg.custom_inspectors == []


@pytest.mark.parametrize(
    ("block", "mode", "entries"),
    [
        ("domains: {allow: [a.com]}", "allowlist", ["a.com"]),
        ("domains: {block: [evil.com, 10.0.0.0/8]}", "blocklist", ["evil.com", "10.0.0.0/8"]),
        ("domains: {list: [192.168.1.7]}", "allowlist", ["192.168.1.7/32"]),
    ],
)
def test_domain_forms(block: str, mode: str, entries: list[str]) -> None:
    cfg = load(MINIMAL + block + "\n")
    assert (cfg.domains.mode, cfg.domains.entries) == (mode, entries)


def test_sizes_ports_env_and_volumes_are_normalized(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    cfg = load(
        """\
        name: demo
        max_request_body: 1MiB
        container:
          image: x
          ports: ["8080:80", "0.0.0.0:9000:9000", "[::1]:7000:7000"]
          env: {GREETING: "hi ${WHO}", PRICE: "$$5"}
          volumes: ["./work:/work:ro", "${DATA}:/data"]
        """,
        tmp_path,
        WHO="there",
        DATA=str(tmp_path),
    )
    assert cfg.max_request_body == 1024 * 1024
    assert cfg.container.ports == ["127.0.0.1:8080:80", "0.0.0.0:9000:9000", "[::1]:7000:7000"]
    assert cfg.container.port_mappings[0] == ("127.0.0.1", 8080, 80)
    assert cfg.container.env == {"GREETING": "hi there", "PRICE": "$5"}
    assert cfg.container.bind_mounts[0] == (str(tmp_path / "work"), "/work", "ro")
    assert cfg.container.bind_mounts[1] == (str(tmp_path), "/data", "")


def test_placeholder_defaults_to_env_name() -> None:
    cfg = load(
        MINIMAL + "secret_injection:\n  - env: OPENAI_API_KEY\n    inject_to: [openai.com]\n"
    )
    assert cfg.secret_injection[0].token == "{{OPENAI_API_KEY}}"


def test_an_opaque_port_is_shown_as_weakening(tmp_path: Path) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(
        MINIMAL + "network:\n  ports:\n"
        "    - {host: git.example.com, port: 8443}\n"
        "    - {host: db.example.com, port: 5432, protocol: opaque}\n"
    )
    _, warnings = check_config(path)
    assert [(w.line, w.path) for w in warnings] == [(7, "network.ports.1.protocol")]
    assert "relays bytes to db.example.com uninspected" in str(warnings[0])


def test_places_default_to_headers_and_0_3_entries_stay_valid(tmp_path: Path) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(
        MINIMAL + "secret_injection:\n"
        "  - {env: A, inject_to: [a.com]}\n"
        "  - {env: B, inject_to: [b.com], places: [query, headers]}\n"
        "  - {env: C, inject_to: [c.com], places: [websocket, body]}\n"
    )
    cfg, warnings = check_config(path)
    assert [rule.places for rule in cfg.secret_injection] == [
        ["headers"],
        ["query", "headers"],
        ["websocket", "body"],
    ]
    assert [(w.line, w.path) for w in warnings] == [
        (6, "secret_injection.1.places"),
        (7, "secret_injection.2.places"),
    ]
    assert "`websocket`, `body` lets the real C be written where c.com may store it" in str(
        warnings[1]
    )
    assert load_config(path) == cfg


BAD = [
    # (config body, expected line, expected text in the problem)
    ("", 1, "the file is empty"),
    ("- a\n- b\n", 1, "top level must be a mapping"),
    ("name: demo\ncontainer: [\n", 3, "YAML syntax error"),
    ("name: a\nname: b\ncontainer: {image: x}\n", 2, "YAML syntax error"),
    ("container: {image: x}\n", 1, "name: is required"),
    ("name: Demo_1\ncontainer: {image: x}\n", 1, "name: 'Demo_1' does not match"),
    ("name: " + "a" * 64 + "\ncontainer: {image: x}\n", 1, "does not match"),
    ("name: demo\n", 1, "container: is required"),
    ("name: demo\ncontainer: {}\n", 2, "give `image`"),
    (MINIMAL + "isolation: vm\n", 4, "isolation: 'vm' is not allowed"),
    (MINIMAL + "domans: {allow: [a.com]}\n", 4, "did you mean `domains`?"),
    (MINIMAL + "  imgae: y\n", 4, "container.imgae: unknown key; did you mean `image`?"),
    (MINIMAL + "  zzz: 1\n", 4, "known keys:"),
    (MINIMAL + "domains: {allow: [a.com], block: [b.com]}\n", 4, "not both"),
    (MINIMAL + "domains: {allow: [a.com], mode: blocklist}\n", 4, "not both"),
    (MINIMAL + "domains: {mode: denylist}\n", 4, "domains.mode"),
    (MINIMAL + "domains: {allow: ['https://a.com/x']}\n", 4, "is not a domain name"),
    (MINIMAL + "domains: {allow: ['a..com']}\n", 4, "is not a domain name"),
    (MINIMAL + 'domains: {allow: ["a\\n.b.com"]}\n', 4, "is not a domain name"),
    (MINIMAL + 'secrets: {allow_to_domains: {"x\\n": [a.com]}}\n', 4, "is not a pattern name"),
    (MINIMAL + "domains: {allow: ['10.0.0.300']}\n", 4, "not an IP address or CIDR"),
    (MINIMAL + "domains:\n  allow:\n    - ok.com\n    - 'bad domain'\n", 4, "domains.list.1"),
    (MINIMAL + "secret_injection:\n  - env: K\n", 5, "inject_to: is required"),
    (MINIMAL + "secret_injection:\n  - env: K\n    inject_to: []\n", 6, "at least 1"),
    (MINIMAL + "secret_injection:\n  - env: 9K\n    inject_to: [a.com]\n", 5, "env"),
    (
        MINIMAL + "secret_injection:\n  - {env: K, inject_to: [a.com], places: [path]}\n",
        5,
        "'path'",
    ),
    (
        MINIMAL + "secret_injection:\n  - {env: K, inject_to: [a.com], places: []}\n",
        5,
        "at least 1",
    ),
    (
        MINIMAL + "secret_injection:\n  - {env: K, inject_to: [a.com]}\n"
        "  - {env: K, inject_to: [b.com]}\n",
        4,
        "listed twice",
    ),
    (
        MINIMAL + "secret_injection:\n  - {env: A, placeholder: '{{X}}', inject_to: [a.com]}\n"
        "  - {env: B, placeholder: '{{X}}', inject_to: [b.com]}\n",
        4,
        "used twice",
    ),
    (MINIMAL + "secrets:\n  extra_patterns:\n    - name: x\n", 6, "exactly one of `pattern`"),
    (MINIMAL + "secrets:\n  extra_patterns:\n    - {name: x, pattern: '(ab'}\n", 6, "compile"),
    (MINIMAL + "secrets: {enabled: 'yes'}\n", 4, "secrets.enabled"),
    (MINIMAL + "max_request_body: lots\n", 4, "is not a size"),
    (MINIMAL + "max_request_body: -1\n", 4, "greater than or equal to 0"),
    (MINIMAL + "entropy: {threshold: 9}\n", 4, "entropy.threshold"),
    (MINIMAL + "entropy: {action: drop}\n", 4, "entropy.action: 'drop' is not allowed"),
    (MINIMAL + "content_type: {base64_min_len: 2}\n", 4, "content_type.base64_min_len"),
    (MINIMAL + "inspectors:\n  - name: mine\n", 5, "needs exactly one of `path` or `module`"),
    (MINIMAL + "inspectors:\n  - {name: entropy, path: /x.py}\n", 5, "is built in"),
    (MINIMAL + "inspectors:\n  - {name: x, module: 'not a module'}\n", 5, "module"),
    (MINIMAL + "rate_limit: {requests_per_second: -1}\n", 4, "rate_limit.requests_per_second"),
    (MINIMAL + "logging: {level: loud}\n", 4, "logging.level"),
    (MINIMAL + "logging: {dns_queries: some}\n", 4, "logging.dns_queries"),
    (MINIMAL + "dns_servers: [dns.google]\n", 4, "must be an IP address"),
    (MINIMAL + "dns_servers: ['1.1.1.1:99999']\n", 4, "not a port number"),
    (MINIMAL + "firecracker: {vcpus: 0}\n", 4, "firecracker.vcpus"),
    (MINIMAL + "network: {allow_cidrs: [nope]}\n", 4, "is not a CIDR block"),
    (
        MINIMAL + "network:\n  ports:\n    - {host: a.example, port: 443}\n",
        6,
        "port 443 is open to every allowed host already",
    ),
    (MINIMAL + "network:\n  ports:\n    - {host: a.example, port: 0}\n", 6, "network.ports"),
    (
        MINIMAL + "network:\n  ports:\n    - {host: 'a b', port: 8443}\n",
        6,
        "is not a domain name",
    ),
    (
        MINIMAL + "network:\n  ports:\n    - {host: a.example, port: 8443}\n"
        "    - {host: b.example, port: 8443, protocol: http}\n",
        5,
        "port 8443 is listed as both https and http",
    ),
    (
        MINIMAL + "network:\n  ports:\n    - {host: a.example, port: 22, protocol: opaque}\n"
        "    - {host: b.example, port: 22, protocol: opaque}\n",
        5,
        "an opaque port can lead to one host only",
    ),
    (MINIMAL + "  ports: ['80']\n", 4, "must look like 'HOST:CTR'"),
    (MINIMAL + "  ports: ['8080:70000']\n", 4, "not a port number"),
    (MINIMAL + "  ports: ['lan:8080:80']\n", 4, "not an IP address"),
    (MINIMAL + "  volumes: ['/definitely/missing:/x']\n", 4, "does not exist; create it first"),
    (MINIMAL + "  volumes: ['/tmp']\n", 4, "must look like 'HOST:CONTAINER"),
    (MINIMAL + "  volumes: ['/tmp:relative']\n", 4, "absolute path inside the container"),
    (MINIMAL + "  volumes: ['${NOPE_UNSET}:/x']\n", 4, "not set in the environment"),
    (MINIMAL + "  tmpfs: ['/tmp:size=1M;rm -rf']\n", 4, "mount options"),
    (MINIMAL + "  named_volumes: {'bad/name': /data}\n", 4, "volume name"),
    (MINIMAL + '  env: {X: "a\\nb"}\n', 4, "control characters"),
    (MINIMAL + "  env: {'1X': a}\n", 4, "container.env.1X"),
    (MINIMAL + "  user: root\n", 4, "container.user"),
    (MINIMAL + "  memory: 4 gigs\n", 4, "container.memory"),
    (MINIMAL + "  cpus: -1\n", 4, "container.cpus"),
    (MINIMAL + "  drop_capabilities: [net_raw]\n", 4, "is not a capability name"),
    (MINIMAL + "  restart: sometimes\n", 4, "container.restart"),
    (MINIMAL + "  read_only: 'false'\n", 4, "container.read_only"),
    (MINIMAL + "  command: 'python app.py'\n", 4, "container.command"),
    (MINIMAL + "  timeout_stop_sec: 99999999\n", 4, "container.timeout_stop_sec"),
]


@pytest.mark.parametrize(("body", "line", "text"), BAD, ids=[t for _, _, t in BAD])
def test_bad_config_is_located(body: str, line: int, text: str) -> None:
    found = problems(body)
    assert any(p.startswith(f"cage.yaml:{line}:") and text in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems("name: BAD\ncontainer: {image: x, user: root}\nentropy: {threshold: 10}\n")
    assert len(found) == 3


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * (1024 * 1024 + 1))
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(huge)


def test_relative_volume_resolves_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    path = tmp_path / "cage.yaml"
    path.write_text(MINIMAL + "  volumes: ['./agent:/app:ro']\n")
    cfg = load_config(path)
    assert cfg.container.bind_mounts[0].host == str(tmp_path / "agent")


def test_a_json_config_loads_as_its_yaml_twin_without_the_yaml_reader(tmp_path: Path) -> None:
    # The sidecars' config files are JSON (cage/layout.py): the DNS sidecar then never
    # imports ruamel.
    path = _sidecar_json(
        tmp_path, _written(tmp_path / "c.yaml", MINIMAL + "domains:\n  allow: [a.example]\n")
    )
    loaded_ruamel, dumped = _in_fresh_python(
        f"config = load_config({str(path)!r})", "config.model_dump(mode='json')"
    )
    assert not loaded_ruamel
    assert dumped == check_config(path)[0].model_dump(mode="json")  # the YAML reader's result


def test_a_json_config_is_checked_with_its_warnings_without_the_yaml_reader(
    tmp_path: Path,
) -> None:
    # `proxy run` checks its config (warnings included): with the sidecar's JSON file it
    # must not load ruamel either, and must still say every warning the YAML route says.
    yaml_path = _written(
        tmp_path / "c.yaml", MINIMAL + "domains:\n  enforcement: learn\n  allow: [a.example]\n"
    )
    path = _sidecar_json(tmp_path, yaml_path)
    loaded_ruamel, warnings = _in_fresh_python(
        f"config, warnings = check_config({str(path)!r})", "[str(w) for w in warnings]"
    )
    assert not loaded_ruamel
    from_yaml = check_config(yaml_path)[1]
    assert [w.path for w in from_yaml] == ["domains.enforcement"]
    assert warnings == [f"{path}: {w.path}: {w.message}" for w in from_yaml]  # no line


def _sidecar_json(tmp_path: Path, yaml_path: Path) -> Path:
    from agentcage.cage.layout import sidecar_config

    path = tmp_path / "sidecar.json"
    path.write_text(sidecar_config(load_config(yaml_path), "debian:bookworm-slim"))
    return path


def _in_fresh_python(statement: str, result: str) -> Any:
    """[whether ruamel was imported, `result`] after `statement`, in a new interpreter.

    This one has imported ruamel already.
    """
    script = (
        "import json, sys\n"
        "from agentcage.config import check_config, load_config\n"
        f"{statement}\n"
        f"print(json.dumps(['ruamel.yaml' in sys.modules, {result}]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "demo", "name": "other", "container": {"image": "d"}}', "duplicate key"),
        ('{"name": "demo",\n "container": {"image": "d"},\n "dns_servers": 3}', "c.json:3"),
    ],
)
def test_a_json_config_with_a_problem_is_reported_as_yaml_reports_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(InvalidConfig, match=expected):
        load_config(_written(tmp_path / "c.json", text))


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
