"""Hostile input at every RPC of every service: hypothesis-generated messages, raw garbage bytes
and oversized messages. The server must never crash (health and a normal call still work after),
never answer INTERNAL/UNKNOWN (an unhandled exception), never hang, and never leave partial
state (a call that fails writes no row in any table).

Allowed codes per RPC are the documented ones (RELIABILITY.md): INVALID_ARGUMENT for bad input,
RESOURCE_EXHAUSTED above the size limit, and for well-formed requests the code their meaning
calls for (NOT_FOUND, ALREADY_EXISTS, ABORTED, OUT_OF_RANGE) or OK.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from contextlib import contextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sextant.api import api_pb2, api_pb2_grpc, store_pb2, store_pb2_grpc
from sextant.config import ServerSettings
from sextant.server import GrpcServer
from tests.data.bad.generate import BASE
from tests.integration.bad_input_support import sqlite_db_manager
from tests.integration.hostile_messages import messages

pytestmark = pytest.mark.xdist_group("hostile-grpc")

C = grpc.StatusCode
LIMIT = 8 * 1024 * 1024
CALL_TIMEOUT = 30.0
FUZZ = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

KINDS = st.sampled_from(["Experiment", "Trial", "Suggestion", "Event", "", "experiment", "../Trial"])
NAMES = st.sampled_from(["bad-input", "x", "", "..", "a/b", "$(id)", "n" * 300])
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=12)


def _mutated_spec(draw_value, key):
    spec = json.loads(json.dumps(BASE["spec"]))
    if key is not None:
        spec[key] = draw_value
    return json.dumps(spec)


SPEC_JSON = st.one_of(
    st.builds(_mutated_spec, JSON_VALUES, st.sampled_from([None, *BASE["spec"], "unknown"])),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=30),
)
STORE_HINTS = {"kind": KINDS, "name": NAMES, "namespace": st.sampled_from(["default", "", "..", "Default"]),
               "spec_json": SPEC_JSON, "status_json": st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=10))}
ALGORITHMS = st.sampled_from(["random", "grid", "tpe", "sobol", "cmaes", "unknown", ""])
SUGGESTION_HINTS = {"algorithm_name": ALGORITHMS, "current_request_number": st.integers(-5, 20),
                    "total_request_number": st.integers(-5, 50)}


# ---- a server's invariants --------------------------------------------------------------------------

def assert_healthy(address: str, service: str = "") -> None:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def call(method, request) -> grpc.StatusCode:
    try:
        method(request, timeout=CALL_TIMEOUT)
    except grpc.RpcError as err:
        return err.code()
    return C.OK


# ---- DB manager: Katib DBManager + ResourceStore -----------------------------------------------------

@pytest.fixture(scope="module")
def dbm(tmp_path_factory):
    with sqlite_db_manager(tmp_path_factory.mktemp("hostile"), max_message_bytes=LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def channel(dbm):
    ch = grpc.insecure_channel(dbm.address, options=[("grpc.max_send_message_length", 4 * LIMIT)])
    yield ch
    ch.close()


DBM_RPCS = [
    # (service stub, method, request class, hints, allowed codes)
    ("DBManager", "ReportObservationLog", api_pb2.ReportObservationLogRequest, {}, {C.OK, C.INVALID_ARGUMENT}),
    ("DBManager", "GetObservationLog", api_pb2.GetObservationLogRequest, {}, {C.OK, C.INVALID_ARGUMENT}),
    ("DBManager", "DeleteObservationLog", api_pb2.DeleteObservationLogRequest, {}, {C.OK, C.INVALID_ARGUMENT}),
    ("Store", "Create", store_pb2.CreateRequest, STORE_HINTS, {C.OK, C.INVALID_ARGUMENT, C.ALREADY_EXISTS}),
    ("Store", "Get", store_pb2.GetRequest, STORE_HINTS, {C.INVALID_ARGUMENT, C.NOT_FOUND, C.OK}),
    ("Store", "List", store_pb2.ListRequest, STORE_HINTS, {C.OK, C.INVALID_ARGUMENT}),
    ("Store", "Update", store_pb2.UpdateRequest, STORE_HINTS,
     {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.ABORTED}),
    ("Store", "UpdateStatus", store_pb2.UpdateRequest, STORE_HINTS,
     {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.ABORTED}),
    ("Store", "Delete", store_pb2.DeleteRequest, STORE_HINTS, {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.ABORTED}),
]


def _stub(channel, which):
    return api_pb2_grpc.DBManagerStub(channel) if which == "DBManager" else store_pb2_grpc.ResourceStoreStub(channel)


def _normal_calls_work(dbm, channel) -> None:
    assert_healthy(dbm.address)
    store = store_pb2_grpc.ResourceStoreStub(channel)
    store.List(store_pb2.ListRequest(kind="Experiment", namespace="default"), timeout=10)
    db = api_pb2_grpc.DBManagerStub(channel)
    db.ReportObservationLog(api_pb2.ReportObservationLogRequest(
        trial_name="sane-trial", observation_log=api_pb2.ObservationLog(metric_logs=[api_pb2.MetricLog(
            time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="score", value="0.5"))])), timeout=10)
    got = db.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="sane-trial"), timeout=10)
    assert [m.metric.value for m in got.observation_log.metric_logs][-1] == "0.5"


@pytest.mark.parametrize("which,method,cls,hints,allowed", DBM_RPCS, ids=[f"{r[0]}.{r[1]}" for r in DBM_RPCS])
def test_db_manager_rpc_survives_generated_messages(dbm, channel, which, method, cls, hints, allowed):
    rpc = getattr(_stub(channel, which), method)
    seen: set[grpc.StatusCode] = set()

    @FUZZ
    @given(messages(cls, hints))
    def fuzz(request):
        before = dbm.row_counts()
        code = call(rpc, request)
        seen.add(code)
        assert code in allowed, f"{method} answered {code} to {request!r:.400}"
        if code != C.OK:
            assert dbm.row_counts() == before, f"{method} failed with {code} but wrote rows"

    fuzz()
    _normal_calls_work(dbm, channel)


def test_report_batch_with_one_bad_entry_writes_nothing(dbm, channel):
    db = api_pb2_grpc.DBManagerStub(channel)
    good = api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="score", value="1"))
    for bad in (api_pb2.MetricLog(time_stamp="yesterday", metric=api_pb2.Metric(name="score", value="1")),
                api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="", value="1"))):
        before = dbm.row_counts()
        request = api_pb2.ReportObservationLogRequest(
            trial_name="batch-trial", observation_log=api_pb2.ObservationLog(metric_logs=[good] * 50 + [bad]))
        assert call(db.ReportObservationLog, request) == C.INVALID_ARGUMENT
        assert dbm.row_counts() == before
    got = db.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="batch-trial"), timeout=10)
    assert list(got.observation_log.metric_logs) == []


def test_watch_survives_generated_messages(dbm, channel):
    stub = store_pb2_grpc.ResourceStoreStub(channel)

    @settings(FUZZ, max_examples=30)
    @given(messages(store_pb2.WatchRequest, STORE_HINTS))
    def fuzz(request):
        stream = stub.Watch(request, timeout=0.25)
        try:
            for _ in stream:
                pass
            code = C.OK
        except grpc.RpcError as err:
            code = err.code()
        # A well-formed watch just waits (our deadline ends it); a bad one is refused at once.
        assert code in {C.DEADLINE_EXCEEDED, C.INVALID_ARGUMENT, C.OUT_OF_RANGE, C.RESOURCE_EXHAUSTED, C.OK}, \
            f"Watch answered {code} to {request!r:.300}"

    fuzz()
    _normal_calls_work(dbm, channel)


def _raw_method(channel, path):
    return channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)


ALL_DBM_PATHS = [f"/api.v1.beta1.DBManager/{m}" for m in ("ReportObservationLog", "GetObservationLog",
                                                          "DeleteObservationLog")] + \
                [f"/sextant.v1.ResourceStore/{m}" for m in ("Create", "Get", "List", "Update", "UpdateStatus",
                                                           "Delete")]


def _garbage_allowed(code: grpc.StatusCode, details: str | None, allowed: set) -> bool:
    # Bytes that are not a protobuf message are decoded inside the handler
    # (sextant.server.DecodeInterceptor) and answered INVALID_ARGUMENT naming the message type.
    return code in allowed or (code == C.INVALID_ARGUMENT and "is not a valid" in (details or ""))


@pytest.mark.parametrize("path", ALL_DBM_PATHS)
def test_db_manager_survives_garbage_bytes(dbm, channel, path):
    method = _raw_method(channel, path)
    allowed = {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.ALREADY_EXISTS, C.ABORTED}

    @FUZZ
    @given(st.binary(max_size=256))
    def fuzz(data):
        before = dbm.row_counts()
        try:
            method(data, timeout=CALL_TIMEOUT)
            return
        except grpc.RpcError as err:
            assert _garbage_allowed(err.code(), err.details(), allowed), (err.code(), err.details())
        assert dbm.row_counts() == before

    fuzz()
    _normal_calls_work(dbm, channel)


@pytest.mark.parametrize("path", ALL_DBM_PATHS)
def test_db_manager_refuses_oversized_messages(dbm, channel, path):
    before = dbm.row_counts()
    with pytest.raises(grpc.RpcError) as err:
        _raw_method(channel, path)(b"\x0a" + b"\xff" * (LIMIT + 1024), timeout=CALL_TIMEOUT)
    assert err.value.code() == C.RESOURCE_EXHAUSTED
    assert dbm.row_counts() == before
    _normal_calls_work(dbm, channel)


def test_oversized_observation_batch_refused_whole(dbm, channel):
    db = api_pb2_grpc.DBManagerStub(channel)
    log = api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="m", value="1" * 100))
    request = api_pb2.ReportObservationLogRequest(trial_name="huge-batch", observation_log=api_pb2.ObservationLog(
        metric_logs=[log] * (LIMIT // 120 + 10)))
    before = dbm.row_counts()
    assert call(db.ReportObservationLog, request) == C.RESOURCE_EXHAUSTED
    assert dbm.row_counts() == before


# ---- Suggestion (algorithm) service ------------------------------------------------------------------

@contextmanager
def suggestion_server(factory=None):
    from services.suggestion.algorithms.servicer import HEALTH_NAMES, SuggestionServicer, add_to_server

    server = GrpcServer(ServerSettings(port=0, max_workers=8, grace_seconds=0, max_message_bytes=LIMIT),
                        name="hostile-suggestion", health_names=HEALTH_NAMES)
    add_to_server(SuggestionServicer(factory=factory), server)
    port = server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def suggestion():
    with suggestion_server() as address:
        channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 4 * LIMIT)])
        yield address, channel
        channel.close()


def _normal_suggestion_works(address, channel):
    assert_healthy(address, "manager.v1beta1.Suggestion")
    experiment = api_pb2.Experiment(name="sane", spec=api_pb2.ExperimentSpec(
        algorithm=api_pb2.AlgorithmSpec(algorithm_name="random"),
        objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="score"),
        parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=[api_pb2.ParameterSpec(
            name="x", parameter_type=api_pb2.DOUBLE, feasible_space=api_pb2.FeasibleSpace(min="0", max="1"))]),
        max_trial_count=10, parallel_trial_count=2))
    reply = api_pb2_grpc.SuggestionStub(channel).GetSuggestions(
        api_pb2.GetSuggestionsRequest(experiment=experiment, current_request_number=2, total_request_number=2),
        timeout=30)
    assert len(reply.parameter_assignments) == 2


SUGGESTION_RPCS = [
    ("GetSuggestions", api_pb2.GetSuggestionsRequest, {C.OK, C.INVALID_ARGUMENT, C.OUT_OF_RANGE}),
    ("ValidateAlgorithmSettings", api_pb2.ValidateAlgorithmSettingsRequest, {C.OK, C.INVALID_ARGUMENT}),
]


@pytest.mark.parametrize("method,cls,allowed", SUGGESTION_RPCS, ids=[r[0] for r in SUGGESTION_RPCS])
def test_suggestion_rpc_survives_generated_messages(suggestion, method, cls, allowed):
    address, channel = suggestion
    rpc = getattr(api_pb2_grpc.SuggestionStub(channel), method)

    @FUZZ
    @given(messages(cls, SUGGESTION_HINTS))
    def fuzz(request):
        code = call(rpc, request)
        assert code in allowed, f"{method} answered {code} to {request!r:.600}"

    fuzz()
    _normal_suggestion_works(address, channel)


@pytest.mark.parametrize("path", ["/api.v1.beta1.Suggestion/GetSuggestions",
                                  "/api.v1.beta1.Suggestion/ValidateAlgorithmSettings"])
def test_suggestion_survives_garbage_and_oversized(suggestion, path):
    address, channel = suggestion
    method = _raw_method(channel, path)

    @FUZZ
    @given(st.binary(max_size=256))
    def fuzz(data):
        try:
            method(data, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            assert _garbage_allowed(err.code(), err.details(), {C.INVALID_ARGUMENT, C.OUT_OF_RANGE}), \
                (err.code(), err.details())

    fuzz()
    with pytest.raises(grpc.RpcError) as err:
        method(b"\x0a" + b"\xff" * (LIMIT + 1024), timeout=CALL_TIMEOUT)
    assert err.value.code() == C.RESOURCE_EXHAUSTED
    _normal_suggestion_works(address, channel)


def _space_experiment(name: str, algorithm: str, parameters: list[api_pb2.ParameterSpec],
                      max_trials: int = 10) -> api_pb2.Experiment:
    return api_pb2.Experiment(name=name, spec=api_pb2.ExperimentSpec(
        algorithm=api_pb2.AlgorithmSpec(algorithm_name=algorithm),
        objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="score"),
        parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=parameters),
        max_trial_count=max_trials, parallel_trial_count=2))


def _param(name: str, kind, low: str, high: str, step: str = "") -> api_pb2.ParameterSpec:
    return api_pb2.ParameterSpec(name=name, parameter_type=kind,
                                 feasible_space=api_pb2.FeasibleSpace(min=low, max=high, step=step))


X = [_param("x", api_pb2.DOUBLE, "0", "1")]
UNSERVABLE = [  # issue 21: each used to hang, eat memory, answer INTERNAL or retry for ever
    ("request-1e9-random", "random", X, 10**9, C.INVALID_ARGUMENT),
    ("request-1e9-sobol", "sobol", X, 10**9, C.INVALID_ARGUMENT),
    ("request-1e9-tpe", "tpe", X, 10**9, C.INVALID_ARGUMENT),
    ("request-negative", "random", X, -5, C.INVALID_ARGUMENT),
    ("request-too-many-values", "random", [_param(f"p{i}", api_pb2.DOUBLE, "0", "1") for i in range(200)], 100,
     C.INVALID_ARGUMENT),
    ("double-range-overflows", "random", [_param("x", api_pb2.DOUBLE, "-1e308", "1e308")], 2, C.INVALID_ARGUMENT),
    ("int-beyond-int64", "random", [_param("x", api_pb2.INT, "-9223372036854775809", "5")], 2, C.INVALID_ARGUMENT),
    ("int-underscore", "random", [_param("x", api_pb2.INT, "0", "1_0")], 2, C.INVALID_ARGUMENT),
    ("grid-1e12-points", "grid", [_param(f"p{i}", api_pb2.INT, "1", "1000") for i in range(4)], 3, C.OK),
    ("grid-2p53-values", "grid", [_param("x", api_pb2.INT, "0", "9007199254740991")], 3, C.OK),
    ("parameters-10k", "random", [_param(f"p{i}", api_pb2.DOUBLE, "0", "1") for i in range(10_000)], 1,
     C.INVALID_ARGUMENT),
]


@pytest.mark.parametrize("name,algorithm,parameters,count,expected", UNSERVABLE, ids=[u[0] for u in UNSERVABLE])
def test_suggestion_bounds_the_work_of_one_call(suggestion, name, algorithm, parameters, count, expected):
    """Every answer comes well within the deadline (no DEADLINE_EXCEEDED), is never INTERNAL, and
    an error says what to change in a bounded message."""
    address, channel = suggestion
    stub = api_pb2_grpc.SuggestionStub(channel)
    request = api_pb2.GetSuggestionsRequest(experiment=_space_experiment(name, algorithm, parameters),
                                            current_request_number=count, total_request_number=max(count, 0))
    try:
        reply = stub.GetSuggestions(request, timeout=CALL_TIMEOUT)
        code = C.OK
    except grpc.RpcError as err:
        code, reply = err.code(), None
        assert len(err.details()) <= 1100, err.details()[:200]
    assert code == expected
    if reply is not None:
        assert len(reply.parameter_assignments) == count
    _normal_suggestion_works(address, channel)


def test_request_number_zero_is_an_empty_answer(suggestion):
    _, channel = suggestion
    reply = api_pb2_grpc.SuggestionStub(channel).GetSuggestions(api_pb2.GetSuggestionsRequest(
        experiment=_space_experiment("zero", "random", X), current_request_number=0), timeout=CALL_TIMEOUT)
    assert len(reply.parameter_assignments) == 0


def test_work_stops_when_the_caller_gives_up():
    """The server stops the work of a call whose deadline passed instead of finishing it for
    nobody: an algorithm that would loop for ever, checking for cancellation as the built-in
    ones do in their long loops, is stopped there, and the caller gets DEADLINE_EXCEEDED."""
    import threading
    import time

    from services.suggestion.algorithms import algorithm_classes
    from services.suggestion.algorithms.cancel import Cancelled, check_cancelled
    from services.suggestion.algorithms.random_search import RandomSearch

    started, stopped = threading.Event(), threading.Event()
    steps = [0]

    class Endless(RandomSearch):
        def suggest(self, experiment, trials, count):
            started.set()
            try:
                while True:
                    check_cancelled()
                    steps[0] += 1
                    time.sleep(0.002)
            except Cancelled:
                stopped.set()
                raise

    with suggestion_server(lambda name: Endless if name == "endless" else algorithm_classes.load(name)) as address:
        channel = grpc.insecure_channel(address)
        endless = _space_experiment("endless", "endless", [_param("x", api_pb2.DOUBLE, "0", "1")], max_trials=10)
        with pytest.raises(grpc.RpcError) as err:
            api_pb2_grpc.SuggestionStub(channel).GetSuggestions(
                api_pb2.GetSuggestionsRequest(experiment=endless, current_request_number=1, total_request_number=1),
                timeout=1.0)
        assert err.value.code() == C.DEADLINE_EXCEEDED
        assert started.is_set()
        assert stopped.wait(10), "the algorithm was still running after the caller's deadline"
        ran = steps[0]
        time.sleep(0.2)
        assert steps[0] == ran and ran > 0  # stopped for good, after having worked
        _normal_suggestion_works(address, channel)
        channel.close()


def test_the_next_call_is_answered_once_a_heavy_one_timed_out(suggestion):
    """A heavy call whose deadline passes leaves the experiment's lock free: a small request for
    the same experiment is answered at once."""
    address, channel = suggestion
    stub = api_pb2_grpc.SuggestionStub(channel)
    heavy = _space_experiment("heavy", "random", [_param(f"p{i}", api_pb2.DOUBLE, "0", "1") for i in range(100)],
                              max_trials=1000)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetSuggestions(api_pb2.GetSuggestionsRequest(experiment=heavy, current_request_number=100,
                                                          total_request_number=100), timeout=0.01)
    assert err.value.code() == C.DEADLINE_EXCEEDED
    # The same experiment (same per-experiment lock) answers a small request promptly afterwards.
    reply = stub.GetSuggestions(api_pb2.GetSuggestionsRequest(experiment=heavy, current_request_number=1,
                                                              total_request_number=1), timeout=CALL_TIMEOUT)
    assert len(reply.parameter_assignments) == 1
    _normal_suggestion_works(address, channel)


# ---- Early stopping service ----------------------------------------------------------------------------

def _early_stopping_servicer():
    if importlib.util.find_spec("services.suggestion.earlystopping.servicer") is None:
        pytest.skip("services.suggestion.earlystopping has no servicer module yet")
    module = importlib.import_module("services.suggestion.earlystopping.servicer")
    for name in ("EarlyStoppingServicer", "MedianStopServicer"):
        if hasattr(module, name):
            return getattr(module, name)
    pytest.skip("no EarlyStopping servicer class found")


EARLY_RPCS = [
    ("GetEarlyStoppingRules", api_pb2.GetEarlyStoppingRulesRequest,
     {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.UNAVAILABLE}),
    ("SetTrialStatus", api_pb2.SetTrialStatusRequest,
     {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.UNAVAILABLE}),
    ("ValidateEarlyStoppingSettings", api_pb2.ValidateEarlyStoppingSettingsRequest, {C.OK, C.INVALID_ARGUMENT}),
]


@pytest.mark.parametrize("method,cls,allowed", EARLY_RPCS, ids=[r[0] for r in EARLY_RPCS])
def test_early_stopping_rpc_survives_generated_messages(method, cls, allowed):
    servicer_cls = _early_stopping_servicer()
    server = GrpcServer(ServerSettings(port=0, max_workers=4, grace_seconds=0, max_message_bytes=LIMIT),
                        name="hostile-earlystopping")
    api_pb2_grpc.add_EarlyStoppingServicer_to_server(servicer_cls(), server.grpc)
    port = server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        rpc = getattr(api_pb2_grpc.EarlyStoppingStub(channel), method)

        @FUZZ
        @given(messages(cls, {"algorithm_name": st.sampled_from(["medianstop", "", "x"])}))
        def fuzz(request):
            code = call(rpc, request)
            assert code in allowed, f"{method} answered {code} to {request!r:.400}"

        fuzz()
        assert_healthy(f"127.0.0.1:{port}")
    finally:
        channel.close()
        server.stop()
