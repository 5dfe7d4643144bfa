"""The generated Katib wire API matches Katib's api.proto field for field."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor as d
from google.protobuf import json_format

from sextant.api import api_pb2

FILE = api_pb2.DESCRIPTOR
R = "repeated"

# message (relative to package) -> [(number, name, type, label)]
# type: scalar name, "enum:<Name>", "msg:<Name>", or "map" (string -> string).
MESSAGES: dict[str, list[tuple[int, str, str, str]]] = {
    "Experiment": [(1, "name", "string", ""), (2, "spec", "msg:ExperimentSpec", "")],
    "ExperimentSpec": [
        (1, "parameter_specs", "msg:ExperimentSpec.ParameterSpecs", ""), (2, "objective", "msg:ObjectiveSpec", ""),
        (3, "algorithm", "msg:AlgorithmSpec", ""), (4, "early_stopping", "msg:EarlyStoppingSpec", ""),
        (5, "parallel_trial_count", "int32", ""), (6, "max_trial_count", "int32", ""),
        (7, "nas_config", "msg:NasConfig", "")],
    "ExperimentSpec.ParameterSpecs": [(1, "parameters", "msg:ParameterSpec", R)],
    "ParameterSpec": [(1, "name", "string", ""), (2, "parameter_type", "enum:ParameterType", ""),
                      (3, "feasible_space", "msg:FeasibleSpace", "")],
    "FeasibleSpace": [(1, "max", "string", ""), (2, "min", "string", ""), (3, "list", "string", R),
                      (4, "step", "string", ""), (5, "distribution", "enum:Distribution", "")],
    "ObjectiveSpec": [(1, "type", "enum:ObjectiveType", ""), (2, "goal", "double", ""),
                      (3, "objective_metric_name", "string", ""), (4, "additional_metric_names", "string", R)],
    "AlgorithmSpec": [(1, "algorithm_name", "string", ""), (2, "algorithm_settings", "msg:AlgorithmSetting", R)],
    "AlgorithmSetting": [(1, "name", "string", ""), (2, "value", "string", "")],
    "EarlyStoppingSpec": [(1, "algorithm_name", "string", ""),
                          (2, "algorithm_settings", "msg:EarlyStoppingSetting", R)],
    "EarlyStoppingSetting": [(1, "name", "string", ""), (2, "value", "string", "")],
    "NasConfig": [(1, "graph_config", "msg:GraphConfig", ""), (2, "operations", "msg:NasConfig.Operations", "")],
    "NasConfig.Operations": [(1, "operation", "msg:Operation", R)],
    "GraphConfig": [(1, "num_layers", "int32", ""), (2, "input_sizes", "int32", R), (3, "output_sizes", "int32", R)],
    "Operation": [(1, "operation_type", "string", ""), (2, "parameter_specs", "msg:Operation.ParameterSpecs", "")],
    "Operation.ParameterSpecs": [(1, "parameters", "msg:ParameterSpec", R)],
    "Trial": [(1, "name", "string", ""), (2, "spec", "msg:TrialSpec", ""), (3, "status", "msg:TrialStatus", "")],
    "TrialSpec": [(2, "objective", "msg:ObjectiveSpec", ""),
                  (3, "parameter_assignments", "msg:TrialSpec.ParameterAssignments", ""), (4, "labels", "map", R)],
    "TrialSpec.ParameterAssignments": [(1, "assignments", "msg:ParameterAssignment", R)],
    "ParameterAssignment": [(1, "name", "string", ""), (2, "value", "string", "")],
    "TrialStatus": [(1, "start_time", "string", ""), (2, "completion_time", "string", ""),
                    (3, "condition", "enum:TrialStatus.TrialConditionType", ""),
                    (4, "observation", "msg:Observation", "")],
    "Observation": [(1, "metrics", "msg:Metric", R)],
    "Metric": [(1, "name", "string", ""), (2, "value", "string", "")],
    "ReportObservationLogRequest": [(1, "trial_name", "string", ""), (2, "observation_log", "msg:ObservationLog", "")],
    "ReportObservationLogReply": [],
    "ObservationLog": [(1, "metric_logs", "msg:MetricLog", R)],
    "MetricLog": [(1, "time_stamp", "string", ""), (2, "metric", "msg:Metric", "")],
    "GetObservationLogRequest": [(1, "trial_name", "string", ""), (2, "metric_name", "string", ""),
                                 (3, "start_time", "string", ""), (4, "end_time", "string", "")],
    "GetObservationLogReply": [(1, "observation_log", "msg:ObservationLog", "")],
    "DeleteObservationLogRequest": [(1, "trial_name", "string", "")],
    "DeleteObservationLogReply": [],
    "GetSuggestionsRequest": [(1, "experiment", "msg:Experiment", ""), (2, "trials", "msg:Trial", R),
                              (4, "current_request_number", "int32", ""), (5, "total_request_number", "int32", "")],
    "GetSuggestionsReply": [
        (1, "parameter_assignments", "msg:GetSuggestionsReply.ParameterAssignments", R),
        (2, "algorithm", "msg:AlgorithmSpec", ""), (3, "early_stopping_rules", "msg:EarlyStoppingRule", R)],
    "GetSuggestionsReply.ParameterAssignments": [
        (1, "assignments", "msg:ParameterAssignment", R), (2, "trial_name", "string", ""), (3, "labels", "map", R)],
    "ValidateAlgorithmSettingsRequest": [(1, "experiment", "msg:Experiment", "")],
    "ValidateAlgorithmSettingsReply": [],
    "GetEarlyStoppingRulesRequest": [(1, "experiment", "msg:Experiment", ""), (2, "trials", "msg:Trial", R),
                                     (3, "db_manager_address", "string", "")],
    "GetEarlyStoppingRulesReply": [(1, "early_stopping_rules", "msg:EarlyStoppingRule", R)],
    "EarlyStoppingRule": [(1, "name", "string", ""), (2, "value", "string", ""),
                          (3, "comparison", "enum:ComparisonType", ""), (4, "start_step", "int32", "")],
    "ValidateEarlyStoppingSettingsRequest": [(1, "early_stopping", "msg:EarlyStoppingSpec", "")],
    "ValidateEarlyStoppingSettingsReply": [],
    "SetTrialStatusRequest": [(1, "trial_name", "string", "")],
    "SetTrialStatusReply": [],
}

ENUMS: dict[str, list[tuple[str, int]]] = {
    "ParameterType": [("UNKNOWN_TYPE", 0), ("DOUBLE", 1), ("INT", 2), ("DISCRETE", 3), ("CATEGORICAL", 4)],
    "Distribution": [("DISTRIBUTION_UNSPECIFIED", 0), ("UNIFORM", 1), ("LOG_UNIFORM", 2), ("NORMAL", 3),
                     ("LOG_NORMAL", 4)],
    "ObjectiveType": [("UNKNOWN", 0), ("MINIMIZE", 1), ("MAXIMIZE", 2)],
    "ComparisonType": [("UNKNOWN_COMPARISON", 0), ("EQUAL", 1), ("LESS", 2), ("GREATER", 3)],
    "TrialStatus.TrialConditionType": [("CREATED", 0), ("RUNNING", 1), ("SUCCEEDED", 2), ("KILLED", 3),
                                       ("FAILED", 4), ("METRICSUNAVAILABLE", 5), ("EARLYSTOPPED", 6),
                                       ("UNKNOWN", 7)],
}

SERVICES: dict[str, list[tuple[str, str, str]]] = {
    "DBManager": [("ReportObservationLog", "ReportObservationLogRequest", "ReportObservationLogReply"),
                  ("GetObservationLog", "GetObservationLogRequest", "GetObservationLogReply"),
                  ("DeleteObservationLog", "DeleteObservationLogRequest", "DeleteObservationLogReply")],
    "Suggestion": [("GetSuggestions", "GetSuggestionsRequest", "GetSuggestionsReply"),
                   ("ValidateAlgorithmSettings", "ValidateAlgorithmSettingsRequest",
                    "ValidateAlgorithmSettingsReply")],
    "EarlyStopping": [("GetEarlyStoppingRules", "GetEarlyStoppingRulesRequest", "GetEarlyStoppingRulesReply"),
                      ("SetTrialStatus", "SetTrialStatusRequest", "SetTrialStatusReply"),
                      ("ValidateEarlyStoppingSettings", "ValidateEarlyStoppingSettingsRequest",
                       "ValidateEarlyStoppingSettingsReply")],
}

SCALARS = {"string": d.FieldDescriptor.TYPE_STRING, "int32": d.FieldDescriptor.TYPE_INT32,
           "double": d.FieldDescriptor.TYPE_DOUBLE}
PKG = "api.v1.beta1."


def all_messages(container=FILE) -> dict[str, d.Descriptor]:
    out: dict[str, d.Descriptor] = {}
    stack = list(container.message_types_by_name.values())
    while stack:
        m = stack.pop()
        if m.GetOptions().map_entry:
            continue
        out[m.full_name.removeprefix(PKG)] = m
        stack.extend(m.nested_types)
    return out


def describe(field: d.FieldDescriptor) -> tuple[int, str, str, str]:
    repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
    label = R if repeated else ""
    if field.type == d.FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            assert (key.number, value.number) == (1, 2)
            assert key.type == value.type == d.FieldDescriptor.TYPE_STRING
            kind = "map"
        else:
            kind = "msg:" + field.message_type.full_name.removeprefix(PKG)
    elif field.type == d.FieldDescriptor.TYPE_ENUM:
        kind = "enum:" + field.enum_type.full_name.removeprefix(PKG)
    else:
        kind = next((name for name, t in SCALARS.items() if t == field.type), f"type{field.type}")
    return field.number, field.name, kind, label


def test_file_identity():
    assert FILE.package == "api.v1.beta1"
    assert FILE.name == "api.proto"
    assert list(FILE.dependencies) == []


def test_message_set_is_exactly_katibs():
    assert sorted(all_messages()) == sorted(MESSAGES)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_message_fields(name):
    message = all_messages()[name]
    assert sorted(describe(f) for f in message.fields) == sorted(MESSAGES[name])


def test_enums():
    enums = {e.full_name.removeprefix(PKG): e for e in FILE.enum_types_by_name.values()}
    enums["TrialStatus.TrialConditionType"] = all_messages()["TrialStatus"].enum_types_by_name["TrialConditionType"]
    assert set(enums) == set(ENUMS)
    for name, values in ENUMS.items():
        assert [(v.name, v.number) for v in enums[name].values] == values, name


def test_services_and_method_paths():
    assert set(FILE.services_by_name) == set(SERVICES)
    for service_name, methods in SERVICES.items():
        service = FILE.services_by_name[service_name]
        assert service.full_name == PKG + service_name
        got = [(m.name, m.input_type.full_name, m.output_type.full_name, m.client_streaming, m.server_streaming)
               for m in service.methods]
        assert got == [(m, PKG + i, PKG + o, False, False) for m, i, o in methods]
        for m in service.methods:
            path = f"/{service.full_name}/{m.name}"
            assert path.startswith(f"/api.v1.beta1.{service_name}/")


def test_grpc_stubs_use_katib_paths():
    from sextant.api import api_pb2_grpc

    class Recorder:
        def __init__(self):
            self.paths = []

        def unary_unary(self, path, **_kw):
            self.paths.append(path)
            return None

    recorder = Recorder()
    api_pb2_grpc.DBManagerStub(recorder)
    api_pb2_grpc.SuggestionStub(recorder)
    api_pb2_grpc.EarlyStoppingStub(recorder)
    expected = [f"/{PKG}{s}/{m}" for s, methods in SERVICES.items() for m, _, _ in methods]
    assert sorted(recorder.paths) == sorted(expected)


def representative_request() -> api_pb2.GetSuggestionsRequest:
    experiment = api_pb2.Experiment(
        name="random-example",
        spec=api_pb2.ExperimentSpec(
            parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=[
                api_pb2.ParameterSpec(name="--lr", parameter_type=api_pb2.DOUBLE,
                                      feasible_space=api_pb2.FeasibleSpace(min="0.01", max="0.03",
                                                                           distribution=api_pb2.LOG_UNIFORM)),
                api_pb2.ParameterSpec(name="--optimizer", parameter_type=api_pb2.CATEGORICAL,
                                      feasible_space=api_pb2.FeasibleSpace(list=["sgd", "adam", "ftrl"]))]),
            objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, goal=0.99,
                                            objective_metric_name="Validation-accuracy",
                                            additional_metric_names=["accuracy"]),
            algorithm=api_pb2.AlgorithmSpec(algorithm_name="random", algorithm_settings=[
                api_pb2.AlgorithmSetting(name="random_state", value="10")]),
            early_stopping=api_pb2.EarlyStoppingSpec(algorithm_name="medianstop"),
            parallel_trial_count=3, max_trial_count=12,
            nas_config=api_pb2.NasConfig(graph_config=api_pb2.GraphConfig(num_layers=3, input_sizes=[32, 32, 3]))))
    trial = api_pb2.Trial(
        name="random-example-abc",
        spec=api_pb2.TrialSpec(
            objective=experiment.spec.objective,
            parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(assignments=[
                api_pb2.ParameterAssignment(name="--lr", value="0.02")]),
            labels={"team": "a"}),
        status=api_pb2.TrialStatus(start_time="2026-01-01T00:00:00Z",
                                   condition=api_pb2.TrialStatus.EARLYSTOPPED,
                                   observation=api_pb2.Observation(metrics=[
                                       api_pb2.Metric(name="Validation-accuracy", value="0.9")])))
    return api_pb2.GetSuggestionsRequest(experiment=experiment, trials=[trial], current_request_number=2,
                                         total_request_number=5)


def test_round_trip_binary_and_json():
    request = representative_request()
    data = request.SerializeToString()
    again = api_pb2.GetSuggestionsRequest.FromString(data)
    assert again == request
    assert again.trials[0].status.condition == 6
    assert dict(again.trials[0].spec.labels) == {"team": "a"}
    as_json = json_format.MessageToDict(request)
    assert as_json["currentRequestNumber"] == 2
    assert as_json["experiment"]["spec"]["parameterSpecs"]["parameters"][0]["feasibleSpace"]["distribution"] \
        == "LOG_UNIFORM"
    assert json_format.ParseDict(as_json, api_pb2.GetSuggestionsRequest()) == request


def test_known_wire_bytes():
    """Field numbers show in the bytes: GetSuggestionsRequest 4 → tag 0x20, 5 → tag 0x28."""
    assert api_pb2.GetSuggestionsRequest(current_request_number=1, total_request_number=2).SerializeToString() \
        == b"\x20\x01\x28\x02"
    # TrialSpec.objective is field 2 (field 1 unused): tag 0x12, empty message.
    assert api_pb2.TrialSpec(objective=api_pb2.ObjectiveSpec()).SerializeToString() == b"\x12\x00"
    reply = api_pb2.GetSuggestionsReply(parameter_assignments=[
        api_pb2.GetSuggestionsReply.ParameterAssignments(
            assignments=[api_pb2.ParameterAssignment(name="x", value="1")], trial_name="t", labels={"k": "v"})],
        early_stopping_rules=[api_pb2.EarlyStoppingRule(name="loss", value="0.5", comparison=api_pb2.LESS,
                                                        start_step=4)])
    assert api_pb2.GetSuggestionsReply.FromString(reply.SerializeToString()) == reply
    log = api_pb2.ReportObservationLogRequest(trial_name="t", observation_log=api_pb2.ObservationLog(metric_logs=[
        api_pb2.MetricLog(time_stamp="2026-01-01T00:00:00Z", metric=api_pb2.Metric(name="loss", value="0.1"))]))
    assert api_pb2.ReportObservationLogRequest.FromString(log.SerializeToString()) == log
