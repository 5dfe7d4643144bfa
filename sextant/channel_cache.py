"""A few long-lived gRPC channels by address, for controllers that call the same services over
and over (a channel per call costs a TCP connect and an HTTP/2 handshake on both sides)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import grpc

from sextant.channel import open_channel


class ChannelCache:
    def __init__(self, token: str | None = None, size: int = 32):
        self.token = token
        self.size = size
        self._channels: OrderedDict[str, grpc.Channel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is not None:
                self._channels.move_to_end(address)
                return channel
            channel = open_channel(address, token=self.token)
            self._channels[address] = channel
            while len(self._channels) > self.size:
                # Services that went away (a restarted service gets a new port).
                _, old = self._channels.popitem(last=False)
                old.close()
            return channel

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
