"""Container images: build time and size (the BENCHMARKS.md "Container images" rows).

Needs a running Docker engine (see tests/containers/conftest.py for starting one) and root for
debootstrap. Times, each once:
  * the local base images (deploy/docker/build-base-images --rebuild), with --base;
  * filling the wheelhouse from the package index (deploy/docker/fill-wheelhouse --refresh),
    with --wheelhouse;
  * the Sextant image from scratch (docker build --no-cache) on the local base image and the
    wheelhouse, and a rebuild after a source change (only Sextant's own layers run again);
and prints the sizes of all three images. ``--base-image`` builds on another base (e.g. the
official python:3.11-slim where a registry is reachable).

  .venv/bin/python bench/container_images.py [--base] [--wheelhouse]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / "deploy" / "docker"
TAG = "sextant/sextant:bench"
# What the image's build context holds (.dockerignore lets in only these).
CONTEXT = [".dockerignore", "pyproject.toml", "README.md", "requirements.lock", "proto", "sextant", "services",
           "deploy/docker"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.monotonic() - started


def size_mb(image: str) -> float:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True,
                         check=True).stdout
    return int(out) / 1e6


def build(base: str, *extra: str, context: Path = ROOT) -> float:
    return timed(["docker", "build", "--network", "host", *extra, "-f", str(DOCKER_DIR / "Dockerfile"),
                  "--build-arg", f"BASE_IMAGE={base}", "--build-arg", "WHEELS_ONLY=yes", "-t", TAG, str(context)],
                 env={**os.environ, "DOCKER_BUILDKIT": "0"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", action="store_true", help="also time building the local base images")
    parser.add_argument("--wheelhouse", action="store_true", help="also time filling the wheelhouse afresh")
    parser.add_argument("--base-image", default=None, help="build on this base (default: the local stand-in)")
    args = parser.parse_args()
    python_image, mariadb_image = subprocess.run([str(DOCKER_DIR / "build-base-images"), "--print-names"],
                                                 capture_output=True, text=True, check=True).stdout.split()
    rows = []
    if args.base:
        rows.append(("local base images (debootstrap + import, both)",
                     timed([str(DOCKER_DIR / "build-base-images"), "--rebuild"])))
    else:
        timed([str(DOCKER_DIR / "build-base-images")])
    if args.wheelhouse:
        rows.append(("wheelhouse from the index (pip download)",
                     timed([str(DOCKER_DIR / "fill-wheelhouse"), "--refresh"], {**os.environ, "PYTHON": sys.executable})))
    else:
        timed([str(DOCKER_DIR / "fill-wheelhouse")], {**os.environ, "PYTHON": sys.executable})
    base = args.base_image or python_image
    rows.append((f"sextant image, no cache (on {base})", build(base, "--no-cache")))
    # A source change: a copy of the context with one module touched, so the checkout is left alone.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "context"
        (copy / "deploy").mkdir(parents=True)
        for name in CONTEXT:
            source, target = ROOT / name, copy / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        (copy / "sextant" / "__init__.py").write_text((copy / "sextant" / "__init__.py").read_text()
                                                      + f"\n# bench {time.time()}\n")
        rows.append(("sextant image, after a source change (layer cache)", build(base, context=copy)))
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for what, seconds in rows:
        print(f"{what:60s} {seconds:7.1f} s")
    for image in (TAG, python_image, mariadb_image):
        print(f"{image:60s} {size_mb(image):7.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
