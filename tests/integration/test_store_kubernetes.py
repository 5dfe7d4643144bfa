"""The Kubernetes-API store (sextant.store.kubernetes) passes the store conformance kit against
Sextant's own Kubernetes API server: real HTTPS on 127.0.0.1, the real ``kubernetes`` client
configured from a kubeconfig, the server on an in-memory store with a short history. Every request
the store sends is recorded and must be one its declared RBAC table (``API_CALLS``) grants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sextant.store.conformance import Capabilities, ResourceStoreContract
from sextant.store.interface import ResourceStore
from sextant.store.kubernetes import API_CALLS, KubernetesResourceStore
from sextant.store.memory import MemoryResourceStore
from tests.integration.api_server_thread import api_server_thread
from tests.integration.kube_calls import RecordedCalls

HISTORY = 32

pytestmark = pytest.mark.xdist_group("store-kubernetes")


@pytest.fixture(scope="module")
def kube_store(tmp_path_factory) -> Iterator[KubernetesResourceStore]:
    backing = MemoryResourceStore(history=HISTORY, bookmark_seconds=0.5)
    with pytest.MonkeyPatch.context() as patch:
        # The server's window of recent changes as short as the store's history, so that an old
        # version is Expired after a few writes, as in a cluster whose etcd was compacted.
        patch.setattr("services.api_server.watch.WINDOW", HISTORY)
        with api_server_thread(backing, tmp_path_factory.mktemp("api")) as server, \
                KubernetesResourceStore.from_config(str(server.kubeconfig), retry_seconds=5,
                                                    collect_seconds=5) as store:
            calls = RecordedCalls(store.api)
            yield store
    # Every request the kit made the store send is one the overlay's RBAC grants (API_CALLS).
    assert calls.requests and calls.grants() <= set(API_CALLS), calls.grants() - set(API_CALLS)


class TestKubernetesStoreContract(ResourceStoreContract):
    @pytest.fixture
    def store(self, kube_store) -> ResourceStore:
        return kube_store

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return Capabilities(bookmark_seconds=0.5, retained=HISTORY, expires_after=HISTORY)
