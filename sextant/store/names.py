"""Kubernetes name rules for kinds, namespaces and names (they become paths and labels)."""

from __future__ import annotations

import re

KINDS = ("Experiment", "Suggestion", "Trial", "Event")
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def kind_errors(kind: str, field: str = "kind") -> list[str]:
    if kind not in KINDS:
        return [f"{field}: {kind!r} is not one of {', '.join(KINDS)}"]
    return []


def namespace_errors(namespace: str, field: str = "metadata.namespace") -> list[str]:
    if len(namespace) > 63 or not _DNS1123_LABEL.match(namespace):
        return [f"{field}: {namespace!r} must be a DNS-1123 label (at most 63 lower-case letters, "
                "digits and '-', starting and ending with a letter or digit)"]
    return []


def name_errors(name: str, field: str = "metadata.name") -> list[str]:
    if not name:
        return [f"{field}: must not be empty"]
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [f"{field}: {name!r} must be a DNS-1123 subdomain (at most 253 lower-case letters, "
                "digits, '-' and '.', each part starting and ending with a letter or digit)"]
    return []


def label_errors(labels: dict[str, str], field: str) -> list[str]:
    errors = []
    for key, value in labels.items():
        if not key or len(key) > 317 or any(c.isspace() or ord(c) < 32 for c in key):
            errors.append(f"{field}: key {key!r} must be 1-317 printable characters without spaces")
        if any(ord(c) < 32 for c in value):
            errors.append(f"{field}[{key}]: value must not contain control characters")
    return errors
