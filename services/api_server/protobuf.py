"""Just enough of Kubernetes' protobuf encoding to read a core/v1 Namespace: kubectl sends
built-in kinds as ``application/vnd.kubernetes.protobuf`` (``kubectl create namespace``).

The body is the 4-byte magic ``k8s\\0`` and a ``runtime.Unknown`` whose ``raw`` field holds
the object; of a Namespace only metadata's name, generateName, labels and annotations matter
here. The wire format is protobuf's (varints, length-delimited fields)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from services.api_server.errors import bad_request

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, data[pos:pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _bytes_fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a message by number (the last one wins)."""
    return {n: v for n, v in _fields(data) if isinstance(v, bytes)}


def _map_entry(data: bytes) -> tuple[str, str]:
    entry = {n: v for n, v in _fields(data) if isinstance(v, bytes)}
    return entry.get(1, b"").decode(), entry.get(2, b"").decode()


def _metadata(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for number, value in _fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            meta["name"] = value.decode()
        elif number == 2:
            meta["generateName"] = value.decode()
        elif number == 11:
            key, val = _map_entry(value)
            meta.setdefault("labels", {})[key] = val
        elif number == 12:
            key, val = _map_entry(value)
            meta.setdefault("annotations", {})[key] = val
    return meta


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON shape (kind, apiVersion, metadata) of a protobuf-encoded object."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body without the k8s magic prefix")
    try:
        unknown = _bytes_fields(body[len(MAGIC):])
        type_meta = _bytes_fields(unknown.get(1, b""))
        obj = _bytes_fields(unknown.get(2, b""))
        metadata = _metadata(obj.get(1, b""))
    except ValueError as err:
        raise bad_request(f"cannot decode the protobuf body: {err}") from None
    return {"apiVersion": type_meta.get(1, b"").decode(), "kind": type_meta.get(2, b"").decode(),
            "metadata": metadata}
