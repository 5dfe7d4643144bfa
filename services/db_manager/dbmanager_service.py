"""Katib's ``api.v1.beta1.DBManager`` service over ``ObservationStore``."""

from __future__ import annotations

import contextlib

import grpc

from services.db_manager.errors import grpc_errors
from services.db_manager.observations import ObservationStore
from sextant.api import api_pb2, api_pb2_grpc

# A write that would be committed with less time than this left could still miss the deadline.
# Missing it is harmless since a repeated batch is recognised (observations.py); the margin
# only spares the caller a retry of a write it would otherwise think lost.
COMMIT_MARGIN_SECONDS = 0.05


def still_wanted(context: grpc.ServicerContext) -> bool:
    """The caller is connected and its deadline (if any) has not (nearly) passed."""
    if not context.is_active():
        return False
    remaining = context.time_remaining()
    return remaining is None or remaining > COMMIT_MARGIN_SECONDS


class DBManagerService(api_pb2_grpc.DBManagerServicer):
    def __init__(self, store: ObservationStore):
        self.store = store

    def ReportObservationLog(self, request: api_pb2.ReportObservationLogRequest,
                             context: grpc.ServicerContext) -> api_pb2.ReportObservationLogReply:
        with grpc_errors(context, "ReportObservationLog"):
            self.store.report(request.trial_name, [
                (m.time_stamp, m.metric.name, m.metric.value) for m in request.observation_log.metric_logs],
                still_wanted=lambda: still_wanted(context))
        return api_pb2.ReportObservationLogReply()

    def GetObservationLog(self, request: api_pb2.GetObservationLogRequest,
                          context: grpc.ServicerContext) -> api_pb2.GetObservationLogReply:
        reply = api_pb2.GetObservationLogReply()
        logs = reply.observation_log.metric_logs
        rows = self.store.rows(request.trial_name, request.metric_name, request.start_time, request.end_time,
                               still_wanted=lambda: still_wanted(context))
        # Rows go from the cursor straight into the reply: one copy of the logs in memory. The
        # generator is closed here, in this thread, which its database connection belongs to.
        with grpc_errors(context, "GetObservationLog"), contextlib.closing(rows):
            for t, n, v in rows:
                log = logs.add(time_stamp=t)
                log.metric.name = n
                log.metric.value = v
        return reply

    def DeleteObservationLog(self, request: api_pb2.DeleteObservationLogRequest,
                             context: grpc.ServicerContext) -> api_pb2.DeleteObservationLogReply:
        with grpc_errors(context, "DeleteObservationLog"):
            self.store.delete(request.trial_name)
        return api_pb2.DeleteObservationLogReply()


class ReadOnlyDBManagerService(api_pb2_grpc.DBManagerServicer):
    """Only ``GetObservationLog``, for the opt-in port without a token: Katib's SDK
    (``KatibClient.get_trial_metrics``) opens an insecure channel and cannot send one. The
    writes stay UNIMPLEMENTED here, so that port can read metrics and nothing else."""

    def __init__(self, service: DBManagerService):
        self.service = service

    def GetObservationLog(self, request: api_pb2.GetObservationLogRequest,
                          context: grpc.ServicerContext) -> api_pb2.GetObservationLogReply:
        return self.service.GetObservationLog(request, context)
