"""Regenerates the protobuf/gRPC modules in this package from ../../proto.

Each proto is compiled from its own directory so that its descriptor keeps the file name
Katib uses (``api.proto``); imports in the generated gRPC stubs are then made absolute.
Run with ``make proto`` (or ``python -m sextant.api.generate``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_ROOT = PACKAGE_DIR.parent.parent / "proto"
PROTOS = {
    "api": PROTO_ROOT / "katib" / "v1beta1" / "api.proto",
    "store": PROTO_ROOT / "sextant" / "v1" / "store.proto",
}


def generate(out_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Writes the generated modules into ``out_dir`` and returns their paths."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    import grpc_tools

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    written: list[Path] = []
    for stem, proto in PROTOS.items():
        args = [
            "protoc",
            f"-I{proto.parent}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed for {proto}")
        grpc_module = out_dir / f"{stem}_pb2_grpc.py"
        text = grpc_module.read_text()
        text = re.sub(rf"^import {stem}_pb2 as", f"from sextant.api import {stem}_pb2 as", text, flags=re.M)
        grpc_module.write_text(text)
        written += [out_dir / f"{stem}_pb2.py", out_dir / f"{stem}_pb2.pyi", grpc_module]
    return written


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    sys.exit(0)
