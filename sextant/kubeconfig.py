"""The kubeconfig of the local stack: ``<data_dir>/kubeconfig``, written by ``sextant up``.

It names one cluster, user and context, all called ``sextant``: the API server's HTTPS
address, the stack's CA certificate (so clients verify the server), the stack's token as the
bearer token, and namespace ``default``. ``export KUBECONFIG=$(sextant kubeconfig)`` is all a
Katib user needs for kubectl, the ``kubernetes`` client and the Katib SDK.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

NAME = "sextant"


def kubeconfig_path(data_dir: Path) -> Path:
    return data_dir / "kubeconfig"


def render(server: str, ca_pem: bytes, token: str, namespace: str = "default") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": NAME, "user": {"token": token}}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": namespace}}],
        "current-context": NAME,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(data_dir: Path, server: str, ca_pem: bytes, token: str) -> Path:
    """Writes the kubeconfig (mode 0600: it holds the token) and returns its path."""
    path = kubeconfig_path(data_dir)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render(server, ca_pem, token))
    os.replace(tmp, path)
    return path
