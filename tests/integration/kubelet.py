"""A pod's containers as local processes, set up the way a kubelet would (``Kubelet``): tests of
the pods Sextant renders for Kubernetes run them against real services on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sextant.runtime.local import child_environment

# What deploy/docker/entrypoint.sh runs with ``python -m``.
MODULE = re.compile(r"^(services|sextant)(\.|$)")


class Kubelet:
    """Runs a pod's containers as local processes the way a kubelet would set them up: each
    volume is a directory under ``root`` (a Secret volume holds its items' values), env entries
    from ``secretKeyRef`` are looked up in ``secrets`` ((name, key) -> value; a missing one fails
    as the pod would), and every address ``addresses`` names is replaced by a local one."""

    def __init__(self, pod_spec: dict, root: Path, secrets: dict[tuple[str, str], str],
                 addresses: dict[str, str]):
        self.secrets, self.addresses = secrets, addresses
        self.directories: dict[str, Path] = {}
        for volume in pod_spec.get("volumes") or []:
            directory = root / volume["name"]
            directory.mkdir()
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                for item in volume["secret"]["items"]:
                    (directory / item["path"]).write_text(self.secret(name, item["key"]))
            self.directories[volume["name"]] = directory

    def secret(self, name: str, key: str) -> str:
        if (name, key) not in self.secrets:
            raise AssertionError(f"the pod needs Secret {name!r} key {key!r}, which the namespace does not hold")
        return self.secrets[(name, key)]

    def local(self, container: dict, words: list[str]) -> list[str]:
        """The container's paths and addresses on this machine."""
        mounts = {m["mountPath"]: str(self.directories[m["name"]]) for m in container.get("volumeMounts") or []}
        out = []
        for word in words:
            for path, directory in sorted(mounts.items(), key=lambda m: -len(m[0])):
                word = word.replace(path, directory)
            for remote, address in self.addresses.items():
                word = word.replace(remote, address)
            out.append(word)
        return out

    def env(self, container: dict) -> dict[str, str]:
        env = {}
        for entry in container.get("env") or []:
            if "valueFrom" in entry:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = self.secret(ref["name"], ref["key"])
            else:
                (env[entry["name"]],) = self.local(container, [entry["value"]])
        return child_environment(env)

    def start(self, container: dict, **popen: object) -> subprocess.Popen:
        """The container's process, as the Sextant image's entrypoint starts it: args that begin
        with a module name run as ``python -m``, others as given (the registry's ``python -m ...``)."""
        args = list(container.get("args") or [])
        command = container.get("command") or (["python", "-m"] if args and MODULE.match(args[0]) else [])
        argv = [sys.executable if word in ("python", "python3") else word
                for word in self.local(container, [*command, *args])]
        return subprocess.Popen(argv, env=self.env(container), **popen)
