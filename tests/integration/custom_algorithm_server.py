"""A user-written algorithm service speaking the Katib Suggestion API (not Sextant's servicer).

Registered under a custom name in a registry file by the suggestion controller tests. It
proposes the lower bound of every parameter, names its trials itself, labels them, and keeps a
call counter in ``reply.algorithm`` (the settings overlay). Settings: ``reject`` → validation
fails; ``short`` → one assignment fewer than asked; ``refuse`` → validation passes but every
GetSuggestions answers INVALID_ARGUMENT (as an algorithm whose arithmetic cannot take the space). It also answers the EarlyStopping API
(registered as a custom early-stopping algorithm): two fixed rules, one echoing the
``db_manager_address`` it was given.
"""

import argparse
import signal
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sextant.api import api_pb2, api_pb2_grpc


class Custom(api_pb2_grpc.SuggestionServicer):
    def ValidateAlgorithmSettings(self, request, context):
        names = {s.name for s in request.experiment.spec.algorithm.algorithm_settings}
        if "reject" in names:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "custom algorithm rejects setting 'reject'")
        return api_pb2.ValidateAlgorithmSettingsReply()

    def GetSuggestions(self, request, context):
        settings = {s.name: s.value for s in request.experiment.spec.algorithm.algorithm_settings}
        if "refuse" in settings:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "high is out of bounds for int64")
        n = request.current_request_number - (1 if "short" in settings else 0)
        first = request.total_request_number - request.current_request_number
        reply = api_pb2.GetSuggestionsReply()
        for i in range(n):
            pa = reply.parameter_assignments.add(trial_name=f"{request.experiment.name}-custom-{first + i}")
            pa.labels["made-by"] = "custom"
            for p in request.experiment.spec.parameter_specs.parameters:
                fs = p.feasible_space
                pa.assignments.add(name=p.name, value=fs.min or (fs.list[0] if fs.list else ""))
        calls = int(settings.get("calls", "0")) + 1
        reply.algorithm.algorithm_name = request.experiment.spec.algorithm.algorithm_name
        reply.algorithm.algorithm_settings.add(name="calls", value=str(calls))
        reply.algorithm.algorithm_settings.add(name="seen_trials", value=str(len(request.trials)))
        return reply


class CustomEarlyStopping(api_pb2_grpc.EarlyStoppingServicer):
    def ValidateEarlyStoppingSettings(self, request, context):
        if any(s.name == "reject" for s in request.early_stopping.algorithm_settings):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "custom early stopping rejects 'reject'")
        return api_pb2.ValidateEarlyStoppingSettingsReply()

    def GetEarlyStoppingRules(self, request, context):
        return api_pb2.GetEarlyStoppingRulesReply(early_stopping_rules=[
            api_pb2.EarlyStoppingRule(name="acc", value="0.5", comparison=api_pb2.LESS, start_step=2),
            api_pb2.EarlyStoppingRule(name="db", value=request.db_manager_address,
                                      comparison=api_pb2.UNKNOWN_COMPARISON),
        ])


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
api_pb2_grpc.add_SuggestionServicer_to_server(Custom(), server)
api_pb2_grpc.add_EarlyStoppingServicer_to_server(CustomEarlyStopping(), server)
hs = health.HealthServicer()
for name in ("", "manager.v1beta1.Suggestion"):
    hs.set(name, health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(hs, server)
server.add_insecure_port(f"127.0.0.1:{args.port}")
server.start()
signal.signal(signal.SIGTERM, lambda *_: (server.stop(0), sys.exit(0)))
server.wait_for_termination()
