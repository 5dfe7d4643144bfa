"""In-process stand-ins for the DB manager's observation-log API and the EarlyStopping API.

Real gRPC servers on loopback (port 0 → a free port); they record what they receive so tests
can assert on it. A server can be stopped and started again on the same port to simulate an
outage.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from sextant.api import api_pb2, api_pb2_grpc


class ObservationStore(api_pb2_grpc.DBManagerServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.logs: dict[str, list[tuple[str, str, str]]] = {}
        self.calls = 0

    def ReportObservationLog(self, request, context):
        with self.lock:
            self.calls += 1
            rows = self.logs.setdefault(request.trial_name, [])
            for m in request.observation_log.metric_logs:
                rows.append((m.time_stamp, m.metric.name, m.metric.value))
        return api_pb2.ReportObservationLogReply()

    def GetObservationLog(self, request, context):
        with self.lock:
            rows = [r for r in self.logs.get(request.trial_name, [])
                    if not request.metric_name or r[1] == request.metric_name]
        rows = sorted(rows, key=lambda r: r[0])  # stable: ties keep insertion order
        return api_pb2.GetObservationLogReply(observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp=t, metric=api_pb2.Metric(name=n, value=v)) for t, n, v in rows]))

    def DeleteObservationLog(self, request, context):
        with self.lock:
            self.logs.pop(request.trial_name, None)
        return api_pb2.DeleteObservationLogReply()

    def values(self, trial: str, metric: str) -> list[str]:
        with self.lock:
            return [v for _, n, v in self.logs.get(trial, []) if n == metric]


class EarlyStoppingRecorder(api_pb2_grpc.EarlyStoppingServicer):
    def __init__(self):
        self.stopped: list[str] = []

    def SetTrialStatus(self, request, context):
        self.stopped.append(request.trial_name)
        return api_pb2.SetTrialStatusReply()


class FakeServer:
    def __init__(self, port: int = 0):
        self.store = ObservationStore()
        self.early = EarlyStoppingRecorder()
        self.port = port
        self.server: grpc.Server | None = None

    def start(self) -> FakeServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        api_pb2_grpc.add_DBManagerServicer_to_server(self.store, server)
        api_pb2_grpc.add_EarlyStoppingServicer_to_server(self.early, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self.server = server
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(0).wait()
            self.server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"
