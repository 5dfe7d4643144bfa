"""Where the local stack's TLS files live (``<data_dir>/tls/``), without loading the
cryptography package that makes them (``sextant.tls``): ``sextant status`` only needs the CA's
path to check the API server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def under(cls, directory: Path) -> TlsFiles:
        return cls(directory / "ca.crt", directory / "ca.key", directory / "server.crt", directory / "server.key")
