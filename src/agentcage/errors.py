"""The project's error tree; every user-facing failure is one of these.

    AgentcageError            exit 1
    ├── ConfigError           exit 2   a config file or CLI argument is wrong
    ├── StateError            exit 1   the deployment state store is missing or damaged
    ├── PolicyError           exit 1   the inspection engine cannot be built
    ├── DnsError              exit 1   the DNS sidecar cannot be configured or run
    ├── HostError             exit 1   this machine cannot run cages yet (`host check`)
    ├── VmmError              exit 1   a microVM's monitor, guest image or guest agent failed
    ├── PodmanError           exit 3   podman / systemd refused or failed
    │   └── UnreachableError  exit 1   the cage's systemd or Podman cannot be asked at all
    └── KubeError             exit 3   a Kubernetes API server refused or failed a request
        ├── KubeUnreachableError       the API server cannot be reached at all
        ├── KubeAuthError              401/403: the credentials or their RBAC rights
        ├── KubeNotFoundError          the namespace or an object is not there
        ├── KubeConflictError          409: another writer owns or changed the object
        └── KubeRolloutError           a workload did not become ready in time

The CLI catches `AgentcageError` in one place, prints `diagnostics()` and exits
with `exit_code`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import ClassVar


class AgentcageError(Exception):
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        text = self.message
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class ConfigError(AgentcageError):
    exit_code: ClassVar[int] = 2


class StateError(AgentcageError):
    pass


class PolicyError(AgentcageError):
    pass


class DnsError(AgentcageError):
    pass


class DepsError(AgentcageError):
    """A pin could not be read, or a source of newer versions could not be asked."""


class HostError(AgentcageError):
    pass


class VmmError(AgentcageError):
    pass


class PodmanError(AgentcageError):
    exit_code: ClassVar[int] = 3


class UnreachableError(PodmanError):
    """Nothing about the cage's units or containers can be known: report it, change nothing.

    Distinct from a refusal: a host that cannot be asked must never be taken for an empty
    one (a destroy would forget a cage that still runs).
    """

    exit_code: ClassVar[int] = 1


class KubeError(AgentcageError):
    """The message names the cluster (kubeconfig context and server) it was asking."""

    exit_code: ClassVar[int] = 3


class KubeUnreachableError(KubeError):
    pass


class KubeAuthError(KubeError):
    pass


class KubeNotFoundError(KubeError):
    pass


class KubeConflictError(KubeError):
    pass


class KubeRolloutError(KubeError):
    pass
