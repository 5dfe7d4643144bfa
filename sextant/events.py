"""Recording Event resources about other resources (what ``sextant describe`` shows).

An Event is ``kind: Event`` with ``spec {involvedObject {kind, name}, type Normal|Warning,
reason, message, source}``; it is owned by the resource it is about, so it goes away with it.
Recording is best effort: a failure is logged and never fails a reconcile.
"""

from __future__ import annotations

import logging
import secrets

from sextant.resources.models import Event, Experiment, ObjectMeta, OwnerReference, Suggestion, Trial
from sextant.store.interface import ResourceStore
from sextant.timestamps import now_rfc3339

log = logging.getLogger("sextant.events")


class EventRecorder:
    def __init__(self, store: ResourceStore, source: str):
        self.store = store
        self.source = source

    def record(self, resource: Experiment | Trial | Suggestion, type_: str, reason: str, message: str) -> None:
        meta = resource.metadata
        event = Event(
            metadata=ObjectMeta(
                name=f"{meta.name}.{secrets.token_hex(6)}",
                namespace=meta.namespace,
                owner_references=[OwnerReference(api_version=resource.api_version, kind=resource.kind,
                                                 name=meta.name, uid=meta.uid, controller=False)],
            ),
            spec={
                "involvedObject": {"kind": resource.kind, "name": meta.name, "namespace": meta.namespace},
                "type": type_,
                "reason": reason,
                "message": message,
                "source": self.source,
                "time": now_rfc3339(),
            },
        )
        try:
            self.store.create(event)
        except Exception as err:  # noqa: BLE001 - events are best effort
            log.warning("event not recorded", extra={"reason": reason, "error": str(err)})
