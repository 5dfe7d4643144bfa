"""The ResourceStore interface: what controllers, the CLI and the SDK use to read and write
Experiments, Suggestions, Trials and Events.

Implementations: ``SqlResourceStore`` (services/db_manager, the DB manager's own), the gRPC
client ``sextant.store.client.GrpcResourceStore`` (what every other process uses), the
in-memory ``sextant.store.memory.MemoryResourceStore`` (unit tests, embedded use) and
``sextant.store.kubernetes.KubernetesResourceStore`` (Katib's CRDs through a Kubernetes API
server: the controllers' ``--store kubernetes``). The interface is small on purpose.
What every implementation must do is written down as tests in ``sextant.store.conformance``.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    Resource = BaseModel  # one of sextant.resources.models.RESOURCE_MODELS


def __getattr__(name: str) -> Any:
    """``Resource`` resolves on first use: clients that only handle documents (the CLI) never
    import pydantic."""
    if name == "Resource":
        from pydantic import BaseModel

        return BaseModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class StoreError(Exception):
    """Base of every store failure; ``str(err)`` is a message fit for a user."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    """A write carried a stale resourceVersion: re-read, re-apply, retry."""


class Invalid(StoreError):
    """The resource failed defaulting/validation; ``errors`` names each field and rule."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = list(errors)


class Expired(StoreError):
    """A watch asked for a resourceVersion older than the retained history: relist."""


class Unavailable(StoreError):
    """The store cannot be reached right now; retry later."""


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    resource: Resource | None  # None for BOOKMARK
    resource_version: int


class WatchStream(Iterator[WatchEvent], ABC):
    """An open watch: iterate for events. ``cancel()`` may be called from any thread; it ends the
    iteration (StopIteration) promptly, even while another thread waits for the next event."""

    def __iter__(self) -> WatchStream:
        return self

    @abstractmethod
    def __next__(self) -> WatchEvent: ...

    @abstractmethod
    def cancel(self) -> None: ...

    def close(self) -> None:
        self.cancel()


class ResourceStore(ABC):
    @abstractmethod
    def create(self, resource: Resource, *, dry_run: bool = False) -> Resource:
        """Stores a new resource (defaulted and validated if it is an Experiment)."""

    @abstractmethod
    def get(self, kind: str, namespace: str, name: str) -> Resource: ...

    @abstractmethod
    def list(
        self, kind: str, namespace: str = "", labels: Mapping[str, str] | None = None
    ) -> tuple[builtins.list[Resource], int]:
        """Items matching every label pair, and the store version they were read at."""

    def list_documents(
        self, kind: str, namespace: str = "", labels: Mapping[str, str] | None = None
    ) -> tuple[builtins.list[dict[str, Any]], int]:
        """``list`` as plain documents. Stores that hold documents on the wire (the gRPC client)
        return them without building models, which is what servers passing thousands of
        trials on (the Kubernetes API, the web UI) need; this default goes through the models."""
        from sextant.resources.models import to_doc

        items, version = self.list(kind, namespace, labels)
        return [to_doc(item) for item in items], version

    @abstractmethod
    def update(self, resource: Resource) -> Resource:
        """Writes metadata labels/annotations and spec; a stale resourceVersion → Conflict."""

    @abstractmethod
    def update_status(self, resource: Resource) -> Resource:
        """Writes status only; a stale resourceVersion → Conflict."""

    @abstractmethod
    def delete(self, kind: str, namespace: str, name: str, resource_version: int = 0) -> builtins.list[Resource]:
        """Deletes the resource and everything it owns (transitively, through ownerReferences in
        its namespace); returns what was deleted, the resource first. A ``resource_version``
        other than 0 that is not the resource's current one → Conflict."""

    @abstractmethod
    def watch(
        self,
        kind: str = "",
        namespace: str = "",
        since: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> WatchStream:
        """Events after ``since`` (0: from now) in version order, with a BOOKMARK now and then.
        Calling it makes no request: the first ``next()`` opens the watch ("now" is then) and
        raises its errors -- Invalid, or Expired if ``since`` is outside the kept history."""
