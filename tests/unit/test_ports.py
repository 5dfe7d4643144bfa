"""A stack gives each service its own ports: free_port never hands out the same port twice in
one process, even when the kernel offers a just-released port again."""

from __future__ import annotations

import socket

from sextant import ports


def test_ports_handed_out_are_distinct_and_bindable():
    handed = [ports.free_port() for _ in range(300)]
    assert len(set(handed)) == len(handed)
    with socket.socket() as s:
        s.bind(("127.0.0.1", handed[-1]))


def test_a_port_the_kernel_offers_again_is_skipped(monkeypatch):
    offered = iter([40001, 40001, 40001, 40002])

    class FakeSocket:
        def __init__(self, *args: object) -> None:
            self.port = next(offered)

        def __enter__(self) -> FakeSocket:
            return self

        def __exit__(self, *args: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            pass

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(ports, "_handed_out", set())
    monkeypatch.setattr(ports.socket, "socket", FakeSocket)
    assert [ports.free_port(), ports.free_port()] == [40001, 40002]
