"""``python -m services.admission``: Sextant's Experiment defaulting and validation as Katib's
admission webhooks (``/mutate-experiment``, ``/validate-experiment``), served over HTTPS.

The serving certificate comes from ``--cert-dir`` (``tls.crt``/``tls.key``, e.g. mounted from a
cert-manager Certificate, whose CA injector fills ``caBundle``), or else from the Secret
``--secret`` that this process fills and keeps valid itself, patching the CA into the webhook
configurations named ``katib.kubeflow.org``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

from aiohttp import web

from services.admission.app import build_app
from services.admission.review import NamespaceLabels, TrialLookup
from services.api_server.__main__ import ssl_context
from sextant.config import env
from sextant.logging_setup import setup_logging
from sextant.resources.models import Trial
from sextant.runtime.db_manager_access import add_secret_arguments, from_arguments

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger("sextant.admission")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.admission",
                                description="Sextant's Experiment admission webhooks (AdmissionReview v1)")
    p.add_argument("--host", default=env("webhook_host", "0.0.0.0"))  # noqa: S104 - the API server calls in
    p.add_argument("--port", type=int, default=int(env("webhook_port", "8443") or 8443))
    p.add_argument("--cert-dir", default=env("webhook_cert_dir"),
                   help="tls.crt and tls.key to serve with (cert-manager); default: issue into --secret")
    p.add_argument("--namespace", default=env("pod_namespace") or os.environ.get("KATIB_CORE_NAMESPACE", "kubeflow"))
    p.add_argument("--service", default=env("webhook_service", "katib-controller"),
                   help="the Service the webhook configurations call (its DNS names go into the certificate)")
    p.add_argument("--secret", default=env("webhook_secret", "katib-webhook-cert"))
    p.add_argument("--kubeconfig", default=env("kubeconfig"), help="default: the pod's service account")
    p.add_argument("--collector-image", default=env("collector_image"),
                   help="add the metrics collector (this Sextant image) as a sidecar to trial pods (/mutate-pod); "
                        "default: pods are left alone (trials use the wrapped-command mode)")
    p.add_argument("--db-manager", default=env("db_manager", "sextant-db-manager.sextant:6789"),
                   help="the DB manager the sidecars report to")
    add_secret_arguments(p, "the collector sidecars")
    p.add_argument("--log-level", default=env("log_level", "INFO"))
    return p


# What ``trial_lookup`` calls (the webhook's RBAC has it besides certs.API_CALLS).
POD_WEBHOOK_CALLS = (("kubeflow.org", "trials", "get"), ("", "namespaces", "get"))


def namespace_labels(api: ApiClient) -> NamespaceLabels:
    """A namespace's labels from the cluster (the validating webhook's injection-label check)."""
    from kubernetes import client

    core = client.CoreV1Api(api)

    def labels(namespace: str) -> dict[str, str]:
        meta = core.read_namespace(namespace, _request_timeout=5).metadata
        return dict(meta.labels or {}) if meta is not None else {}

    return labels


def trial_lookup(kubeconfig: str | None) -> TrialLookup:
    """A pod's Trial from the cluster (None when there is no such Trial)."""
    from sextant.store.interface import NotFound
    from sextant.store.kubernetes import KubernetesResourceStore

    store = KubernetesResourceStore.from_config(kubeconfig, retry_seconds=5, timeout=5)

    def lookup(namespace: str, name: str) -> Trial | None:
        try:
            return cast(Trial, store.get("Trial", namespace, name))
        except NotFound:
            return None

    return lookup


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    if args.cert_dir:
        cert, key = Path(args.cert_dir) / "tls.crt", Path(args.cert_dir) / "tls.key"
    else:
        from services.admission.certs import WebhookIdentity, ensure_serving_certificate
        from sextant.runtime.kubernetes import api_client_from_config

        directory = Path(tempfile.mkdtemp(prefix="sextant-webhook-"))
        files = ensure_serving_certificate(api_client_from_config(args.kubeconfig),
                                           WebhookIdentity(args.namespace, args.service, args.secret), directory)
        cert, key = files.cert, files.key
    pods, labels = None, None
    if args.collector_image:  # trials collect with the sidecar: their namespaces need the label
        from sextant.runtime.kubernetes import api_client_from_config

        labels = namespace_labels(api_client_from_config(args.kubeconfig))
        from sextant.runtime.kubernetes_sidecar import SidecarSettings

        access = from_arguments(args)
        pods = (trial_lookup(args.kubeconfig), SidecarSettings(args.collector_image, args.db_manager, access))
    log.info("starting", extra={"host": args.host, "port": args.port, "cert": str(cert),
                                "collector_image": args.collector_image})
    web.run_app(build_app(pods=pods, namespace_labels=labels), host=args.host, port=args.port, ssl_context=ssl_context(str(cert), str(key)),
                print=None, access_log=None, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
