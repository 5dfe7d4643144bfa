"""The algorithm registry: which service runs each suggestion and early-stopping algorithm.

It plays the part of Katib's ``katib-config`` ``runtime.suggestions`` / ``runtime.earlyStoppings``.
The packaged ``sextant/registry.yaml`` is the default; ``SEXTANT_REGISTRY`` (a path) or an
explicit path replaces it. Each entry names how to start the service as a local process
(``command``, an argv list where ``{python}`` is this interpreter and ``{port}`` the port to
bind) and on Kubernetes (``image`` + ``args``, ``port``, ``resources``). Users register their
own algorithms here: any server that speaks the Katib ``api.v1.beta1.Suggestion`` API works.

    registry = Registry.load()
    entry = registry.algorithm("tpe")
    argv = entry.local_command(port=40123)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("registry.yaml")
REGISTRY_ENV = "SEXTANT_REGISTRY"
DEFAULT_SUGGESTION_PORT = 6789
DEFAULT_EARLY_STOPPING_PORT = 6788
NAMESPACE_METADATA = "sextant-namespace"
"""gRPC call metadata the suggestion controller adds to every algorithm call: the experiment's
namespace, which Katib's messages do not carry. Sextant's algorithm servers key each
experiment's state by namespace and name, so one server can serve every namespace."""

# Katib's defaults for runtime entries without resources (katib-config defaults.go).
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "10Mi", "ephemeral-storage": "500Mi"},
    "limits": {"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "5Gi"},
}


_CACHE: dict[tuple[str, int, int], Registry] = {}


class RegistryError(ValueError):
    """The registry file is missing, unreadable or malformed; the message names the entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    algorithm_name: str
    command: list[str] = []
    image: str = ""
    image_pull_policy: str = "IfNotPresent"
    args: list[str] = []
    env: dict[str, str] = {}
    port: int = DEFAULT_SUGGESTION_PORT
    resources: dict[str, Any] = Field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RESOURCES.items()})
    service_account_name: str | None = None

    @field_validator("algorithm_name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def local_command(self, port: int, python: str | None = None) -> list[str]:
        """The argv to start this service locally on ``port`` (no shell involved)."""
        if not self.command:
            raise RegistryError(f"algorithm {self.algorithm_name!r} has no local command in the registry")
        return [_substitute(arg, port, python) for arg in self.command]

    def container_args(self, port: int | None = None) -> list[str]:
        """The container args for Kubernetes, with ``{port}`` filled in."""
        return [_substitute(arg, port if port is not None else self.port, "python") for arg in self.args]

    @property
    def runnable_locally(self) -> bool:
        return bool(self.command)

    @property
    def runnable_on_kubernetes(self) -> bool:
        return bool(self.image.strip())


class AlgorithmEntry(_Entry):
    """A suggestion service (``runtime.suggestions`` entry).

    ``multiObjective: true`` marks a service that optimises the extra objectives an experiment
    declares (``sextant.objectives``): only such services are sent the declaration as an
    algorithm setting, so Katib's own services, which reject unknown settings, never see it.
    """

    multi_objective: bool = False


class EarlyStoppingEntry(_Entry):
    """An early-stopping service (``runtime.earlyStoppings`` entry); listens on 6788 by default."""

    port: int = DEFAULT_EARLY_STOPPING_PORT


def _substitute(arg: str, port: int | None, python: str | None) -> str:
    return arg.replace("{python}", python or sys.executable).replace("{port}", str(port))


class _RegistryFile(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    suggestions: list[AlgorithmEntry] = []
    early_stoppings: list[EarlyStoppingEntry] = []


class Registry:
    """Lookup of algorithm and early-stopping services by name (the last entry of a name wins,
    as in katib-config)."""

    def __init__(self, suggestions: list[AlgorithmEntry], early_stoppings: list[EarlyStoppingEntry],
                 source: str = "<memory>"):
        self.source = source
        self._algorithms = {e.algorithm_name: e for e in suggestions}
        self._early = {e.algorithm_name: e for e in early_stoppings}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Registry:
        """From ``path``, else ``$SEXTANT_REGISTRY``, else the packaged default."""
        chosen = Path(path) if path else Path(os.environ[REGISTRY_ENV]) if os.environ.get(REGISTRY_ENV) \
            else DEFAULT_REGISTRY_PATH
        try:
            stat = chosen.stat()
            key = (str(chosen.resolve()), stat.st_mtime_ns, stat.st_size)
            if key in _CACHE:
                return _CACHE[key]  # admission loads it per request: skip re-parsing an unchanged file
            text = chosen.read_text()
        except OSError as err:
            raise RegistryError(f"cannot read algorithm registry {chosen}: {err.strerror}") from None
        try:
            # libyaml's parser when PyYAML has it: the pure-Python one costs every `sextant
            # validate` ~10 ms of CPU on this file.
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except yaml.YAMLError as err:
            raise RegistryError(f"algorithm registry {chosen}: invalid YAML: {err}") from None
        registry = cls.from_dict(data, source=str(chosen))
        _CACHE.clear()
        _CACHE[key] = registry
        return registry

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> Registry:
        if not isinstance(data, dict):
            raise RegistryError(f"algorithm registry {source}: must be a mapping with 'suggestions'")
        try:
            parsed = _RegistryFile.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise RegistryError(f"algorithm registry {source}: {problems}") from None
        return cls(parsed.suggestions, parsed.early_stoppings, source=source)

    @classmethod
    def default(cls) -> Registry:
        return cls.load()

    def algorithm(self, name: str) -> AlgorithmEntry | None:
        return self._algorithms.get(name)

    def early_stopping(self, name: str) -> EarlyStoppingEntry | None:
        return self._early.get(name)

    def algorithm_names(self) -> list[str]:
        return sorted(self._algorithms)

    def early_stopping_names(self) -> list[str]:
        return sorted(self._early)

    def __repr__(self) -> str:
        return f"Registry({self.source!r}, algorithms={self.algorithm_names()})"
