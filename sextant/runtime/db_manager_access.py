"""How a container in a pod Sextant creates reaches the DB manager: the bearer token and the CA
of the DB manager's TLS certificate, each from a Secret in the pod's namespace (a pod can use
only its own namespace's Secrets). The metrics collector in a trial's pod gets them in both
Kubernetes collection modes, the wrapped command (``sextant.runtime.kubernetes``) and the sidecar
(``kubernetes_sidecar``); so does the early-stopping container of an algorithm pod, which reads
the trials' observation logs.

They read them as Sextant's processes read them anywhere: ``SEXTANT_TOKEN`` and
``SEXTANT_TLS_CA`` (a path to the PEM CA). Only the Secret's ``ca.crt`` key is mounted, read-only.
"""

from __future__ import annotations

import argparse
import posixpath
from dataclasses import dataclass
from typing import Any

TOKEN_ENV = "SEXTANT_TOKEN"
TOKEN_KEY = "token"
CA_ENV = "SEXTANT_TLS_CA"
CA_KEY = "ca.crt"
CA_VOLUME = "sextant-db-manager-ca"
CA_DIR = "/etc/sextant/db-manager-ca"
DEFAULT_TOKEN_SECRET = "sextant-token"  # where deploy/kubernetes puts the stack's token


@dataclass(frozen=True)
class DBManagerAccess:
    """Secrets in the pod's namespace; an empty name leaves that part out (a DB manager without
    a token, or serving plaintext)."""

    token_secret: str | None = None  # key ``token``: sent as ``authorization: Bearer``
    ca_secret: str | None = None  # key ``ca.crt``: the container talks TLS, trusting this CA

    def env(self) -> list[dict[str, Any]]:
        env: list[dict[str, Any]] = []
        if self.token_secret:
            env.append({"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": self.token_secret,
                                                                          "key": TOKEN_KEY}}})
        if self.ca_secret:
            env.append({"name": CA_ENV, "value": posixpath.join(CA_DIR, CA_KEY)})
        return env

    def apply(self, pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
        """Gives ``container`` (of ``pod_spec``) the env, and the CA's volume and mount; what the
        container already had under those names is replaced. Without Secrets nothing changes."""
        if not self.token_secret and not self.ca_secret:
            return
        names = {e["name"] for e in self.env()}
        container["env"] = [e for e in container.get("env") or [] if e.get("name") not in names] + self.env()
        if not self.ca_secret:
            return
        container["volumeMounts"] = [*(m for m in container.get("volumeMounts") or [] if m.get("name") != CA_VOLUME),
                                     {"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True}]
        pod_spec["volumes"] = [*(v for v in pod_spec.get("volumes") or [] if v.get("name") != CA_VOLUME),
                               {"name": CA_VOLUME, "secret": {"secretName": self.ca_secret,
                                                              "items": [{"key": CA_KEY, "path": CA_KEY}]}}]


def add_secret_arguments(parser: argparse.ArgumentParser, who: str, prefix: str = "") -> None:
    """``--<prefix>token-secret`` and ``--<prefix>ca-secret``: the Secrets, in the namespace of
    each pod, that give ``who`` the DB manager's token and CA (``from_arguments`` reads them)."""
    parser.add_argument(f"--{prefix}token-secret", default=DEFAULT_TOKEN_SECRET,
                        help=f"Secret (key {TOKEN_KEY}) in each pod's namespace with the DB manager's token "
                             f"for {who}; empty: none")
    parser.add_argument(f"--{prefix}ca-secret", default="",
                        help=f"Secret (key {CA_KEY}) in each pod's namespace with the CA of the DB manager's "
                             f"certificate: {who} talks TLS to it; empty: plaintext")


def from_arguments(ns: argparse.Namespace, prefix: str = "") -> DBManagerAccess:
    """The access the flags of ``add_secret_arguments`` name (an empty name: that part left out)."""
    dest = prefix.replace("-", "_")
    return DBManagerAccess(token_secret=getattr(ns, f"{dest}token_secret") or None,
                           ca_secret=getattr(ns, f"{dest}ca_secret") or None)
