"""The webhook's serving certificate, without cert-manager: kept in a Secret (so every replica
and every restart serves the same one), issued at start-up when the Secret lacks one that is
valid for the Service's names, and its CA written as ``caBundle`` into the webhook
configurations that point at the Service.

The Secret holds ``ca.crt``, ``ca.key``, ``tls.crt`` and ``tls.key``. Issuing and renewing are
``sextant.tls.ensure_tls`` on a private directory filled from the Secret: the CA is kept while
it is valid, so a renewed serving certificate needs no new caBundle.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sextant.tls import TlsFiles, ensure_tls

log = logging.getLogger("sextant.admission.certs")

WEBHOOK_CONFIGURATION = "katib.kubeflow.org"  # Katib's Mutating/ValidatingWebhookConfiguration name
_SECRET_FILES = {"ca.crt": "ca_cert", "ca.key": "ca_key", "tls.crt": "cert", "tls.key": "key"}

# Every Kubernetes API method this module calls -> (api group, resource, verb): the webhook's RBAC.
API_CALLS: dict[str, tuple[str, str, str]] = {
    "read_namespaced_secret": ("", "secrets", "get"),
    "create_namespaced_secret": ("", "secrets", "create"),
    "replace_namespaced_secret": ("", "secrets", "update"),
    "read_mutating_webhook_configuration": ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get"),
    "patch_mutating_webhook_configuration": (
        "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"),
    "read_validating_webhook_configuration": (
        "admissionregistration.k8s.io", "validatingwebhookconfigurations", "get"),
    "patch_validating_webhook_configuration": (
        "admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch"),
}


@dataclass(frozen=True)
class WebhookIdentity:
    namespace: str
    service: str
    secret: str
    configuration: str = WEBHOOK_CONFIGURATION

    @property
    def hosts(self) -> tuple[str, ...]:
        base = f"{self.service}.{self.namespace}"
        return self.service, base, f"{base}.svc", f"{base}.svc.cluster.local"


def _json(response: Any) -> dict[str, Any]:
    import json

    return cast(dict[str, Any], json.loads(response.data))


def ensure_serving_certificate(api: client.ApiClient, identity: WebhookIdentity, directory: Path) -> TlsFiles:
    """The serving certificate in ``directory`` (from the Secret, issued if needed, the Secret
    updated), with the CA patched into the webhook configurations."""
    core = client.CoreV1Api(api)
    try:
        secret: dict[str, Any] | None = _json(core.read_namespaced_secret(
            identity.secret, identity.namespace, _preload_content=False))
    except ApiException as err:
        if err.status != 404:
            raise
        secret = None
    files = TlsFiles.under(directory)
    stored = {k: base64.b64decode(v) for k, v in ((secret or {}).get("data") or {}).items() if k in _SECRET_FILES}
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for key, attr in _SECRET_FILES.items():
        path: Path = getattr(files, attr)
        if key in stored:
            path.write_bytes(stored[key])
            path.chmod(0o600)
        else:
            path.unlink(missing_ok=True)
    ensure_tls(directory, identity.hosts)
    current = {key: getattr(files, attr).read_bytes() for key, attr in _SECRET_FILES.items()}
    if current != stored:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": identity.secret, "namespace": identity.namespace,
                             "labels": {"app.kubernetes.io/managed-by": "sextant"}},
                "data": {k: base64.b64encode(v).decode() for k, v in current.items()}}
        if secret is None:
            core.create_namespaced_secret(identity.namespace, body,  # type: ignore[arg-type]  # a dict body
                                          _preload_content=False)
        else:
            body["metadata"]["resourceVersion"] = secret["metadata"].get("resourceVersion")
            core.replace_namespaced_secret(identity.secret, identity.namespace, body,  # type: ignore[arg-type]
                                           _preload_content=False)
        log.info("serving certificate issued", extra={"secret": identity.secret, "hosts": list(identity.hosts)})
    patch_ca_bundle(api, identity, current["ca.crt"])
    return files


def patch_ca_bundle(api: client.ApiClient, identity: WebhookIdentity, ca_pem: bytes) -> int:
    """Writes ``caBundle`` into every webhook of the two configurations that calls
    ``identity``'s Service; returns how many webhooks changed."""
    admission = client.AdmissionregistrationV1Api(api)
    bundle = base64.b64encode(ca_pem).decode()
    changed = 0
    for read, patch in ((admission.read_mutating_webhook_configuration,
                         admission.patch_mutating_webhook_configuration),
                        (admission.read_validating_webhook_configuration,
                         admission.patch_validating_webhook_configuration)):
        try:
            config = _json(read(identity.configuration, _preload_content=False))
        except ApiException as err:
            if err.status == 404:
                log.warning("webhook configuration not found", extra={"name": identity.configuration})
                continue
            raise
        # A JSON patch per webhook, each guarded by a test of the webhook's name at its index, so
        # a configuration edited meanwhile fails the patch instead of getting a misplaced bundle.
        operations: list[dict[str, Any]] = []
        for i, webhook in enumerate(config.get("webhooks") or []):
            service = (webhook.get("clientConfig") or {}).get("service") or {}
            if service.get("name") == identity.service and service.get("namespace") == identity.namespace \
                    and webhook["clientConfig"].get("caBundle") != bundle:
                operations += [{"op": "test", "path": f"/webhooks/{i}/name", "value": webhook["name"]},
                               {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}]
                changed += 1
        if operations:
            patch(identity.configuration, operations, _preload_content=False)
    return changed
