"""Whether the trials of this machine's stack will run in the image their template names.

Said to the user when an experiment is submitted (by the CLI and the SDK), so that a trial's
image being unused is known at once rather than from the trial's condition after it ran. The
stack's ``stack.json`` gives its runtime: ``local`` never uses images; ``docker`` and ``auto``
do while a Docker engine answers, which is asked here the way the trial controller asks (the
Docker SDK's ping, at the ``DOCKER_HOST`` the stack runs with, also in ``stack.json``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sextant.stack import StackPaths, read_state

# Long enough for an engine on a loaded machine; a missing socket fails at once.
ENGINE_TIMEOUT_SECONDS = 3


def trial_images(doc: dict[str, Any]) -> list[str]:
    """The images named by the containers of a (v1beta1) experiment document's trial template."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "containers" and isinstance(value, list):
                    found.extend(str(c["image"]) for c in value if isinstance(c, dict) and c.get("image"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(((doc.get("spec") or {}).get("trialTemplate") or {}).get("trialSpec"))
    return sorted(set(found))


def engine_problem(docker_host: str | None) -> str:
    """"" when the Docker engine at ``docker_host`` (None: this environment's, else the local
    socket) answers a ping, else why not."""
    try:
        import docker

        from sextant.runtime.docker_jobs import engine_message

        environment = {**os.environ, **({"DOCKER_HOST": docker_host} if docker_host else {})}
        client = docker.from_env(environment=environment, timeout=ENGINE_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as err:  # noqa: BLE001 - any failure means the engine does not answer
        return engine_message(err) or type(err).__name__
    return ""


def unused_image_reason(runtime: str | None, engine: Callable[[], str]) -> str:
    """Why trials that name an image will not run in it on a stack with ``runtime`` (None: a
    remote server, which decides for itself), or "" when they will; ``engine`` says why the
    Docker engine does not answer ("" when it does) and is asked only for docker/auto."""
    if runtime == "local":
        return ("this stack runs trials as local processes on this machine, without the image; start the "
                "stack with `sextant up --runtime docker` (or `auto`) to run them in it")
    if runtime in ("docker", "auto"):
        problem = engine()
        if problem:
            outcome = ("they fail" if runtime == "docker"
                       else "they run as local processes on this machine, without the image")
            return (f"this stack runs trials on Docker (runtime {runtime}) and no Docker engine answers "
                    f"({problem}), so {outcome}; start the engine (the stack uses it from the next trial on)")
    return ""


def stack_unused_image_reason(paths: StackPaths) -> str:
    """``unused_image_reason`` for the stack of ``paths`` ("" when none is running)."""
    state = read_state(paths)
    if not state:
        return ""
    runtime = str(state.get("runtime") or "local")
    return unused_image_reason(runtime, lambda: engine_problem(state.get("docker_host")))


def unused_image_warning(doc: dict[str, Any], reason: Callable[[], str]) -> str:
    """The warning for an experiment document whose trials name an image that will not be used
    ("" when it names none, or ``reason`` - asked only if it does - gives none)."""
    images = trial_images(doc)
    why = reason() if images else ""
    if not why:
        return ""
    name = (doc.get("metadata") or {}).get("name", "")
    return f"experiment {name}: its trials name the image {', '.join(images)}, but {why}"
