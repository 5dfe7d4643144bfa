"""The resources this API server serves: names, scope, verbs and categories, in one table
that discovery, OpenAPI and the request handlers all read."""

from __future__ import annotations

from dataclasses import dataclass

from sextant.resources.models import API_GROUP

KATIB_CATEGORIES = ("all", "kubeflow", "katib")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    group: str
    version: str
    verbs: tuple[str, ...]
    namespaced: bool = True
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "log"
    store_kind: str = ""  # the ResourceStore kind holding it; "" = not a store kind
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def subresource_verbs(self, sub: str) -> tuple[str, ...]:
        return ("get",) if sub == "log" else STATUS_VERBS


def _katib(kind: str, plural: str, version: str = "v1beta1") -> Kind:
    return Kind(kind, plural, kind.lower(), API_GROUP, version, ALL_VERBS, categories=KATIB_CATEGORIES,
                subresources=("status",), store_kind=kind)


EXPERIMENT = _katib("Experiment", "experiments")
TRIAL = _katib("Trial", "trials")
SUGGESTION = _katib("Suggestion", "suggestions")
EXPERIMENT_V1ALPHA3 = _katib("Experiment", "experiments", "v1alpha3")
NAMESPACE = Kind("Namespace", "namespaces", "namespace", "", "v1", ("create", "get", "list", "patch"),
                 namespaced=False, short_names=("ns",))
EVENT = Kind("Event", "events", "event", "", "v1", ("create", "delete", "get", "list", "watch"), store_kind="Event",
             short_names=("ev",))
POD = Kind("Pod", "pods", "pod", "", "v1", ("get", "list"), subresources=("log",), short_names=("po",))

KINDS = (EXPERIMENT, TRIAL, SUGGESTION, EXPERIMENT_V1ALPHA3, NAMESPACE, EVENT, POD)
# Group versions in preference order (the first of a group is its preferred version).
GROUP_VERSIONS: dict[str, tuple[str, ...]] = {"": ("v1",), API_GROUP: ("v1beta1", "v1alpha3")}


def kinds_of(group: str, version: str) -> list[Kind]:
    return [k for k in KINDS if k.group == group and k.version == version]


def lookup(group: str, version: str, plural: str) -> Kind | None:
    for k in KINDS:
        if k.group == group and k.version == version and k.plural == plural:
            return k
    return None
