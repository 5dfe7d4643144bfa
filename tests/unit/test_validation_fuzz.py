"""Property-based fuzzing of experiment admission over the whole schema (issue 21).

Every generated spec must either be rejected with errors that each name a field, quote at most a
short excerpt of the input and never leak a Python exception, or be admitted -- and then the
algorithm service must be able to serve it: GetSuggestions answers OK with exactly the
requested assignments, or a terminal answer the suggestion controller does not retry
(INVALID_ARGUMENT, OUT_OF_RANGE). Never INTERNAL, never an exception escaping the servicer.
The in-process servicer is the real one; only the gRPC context is a small stand-in.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.experiment_controller.trials import build_trial
from services.suggestion.algorithms.servicer import SuggestionServicer
from services.suggestion.controller import grpc_requests as rb
from services.suggestion.earlystopping.servicer import EarlyStoppingServicer
from sextant.algorithm_registry import Registry
from sextant.api import api_pb2
from sextant.resources.admission import admit_experiment
from sextant.resources.models import ParameterAssignment, TrialAssignment
from sextant.resources.numbers import parse_float
from sextant.runtime.job_conditions import check_condition
from sextant.store.interface import Invalid
from tests.data.bad.generate import BASE

FIELD_RE = re.compile(r"^(apiVersion|kind|metadata|spec|document)(\.|\[|:)")
TERMINAL = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE}
MAX_ERROR_CHARS = 1200

TRICKY_NUMBERS = [
    "0", "1", "-1", "4", "0.5", "1e3", "1.", ".5", "1_0", "1_000.5", "\uff11\uff10", "\u0660", "0x1p-2", "0x10",
    "inf", "-Infinity", "nan", "NaN", "1e400", "1e-400", "-9223372036854775809", "9223372036854775807",
    "9007199254740993", "9007199254740992", "-1e308", "1e308", "1e-300", " 1", "1 ", "", "4.0", "+5", "--1",
    "9" * 5000, "0.01", "0.05", "100",
]
numbers = st.one_of(
    st.sampled_from(TRICKY_NUMBERS),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789+-._eExXpP \uff11\u0660", max_size=12),
)
@st.composite
def mostly(draw, good, wild):
    """``good`` five times in six: a spec that is wrong everywhere only tests the first check."""
    return draw(wild if draw(st.integers(0, 5)) == 0 else good)


@st.composite
def seldom(draw, good, wild):
    """``good`` 24 times in 25, for the sections added later (metadata, template, early stopping,
    NAS): there are many of them, and each breaking often would leave few specs admitted. The
    wild value is the middle one, as hypothesis draws the ends of a range more often."""
    return draw(wild if draw(st.integers(0, 24)) == 12 else good)


names = mostly(st.sampled_from(["score", "acc", "val-acc|x"]), st.one_of(
    st.sampled_from(["a.b", "acc.*", " ", "", "score\nevil=1", "m" * 300]), st.text(max_size=12)))
counts = st.one_of(st.none(), st.integers(-3, 12), st.integers(-(2**40), 2**40),
                   st.sampled_from([2147483647, 2147483648, 1000, 1001]))
GOOD_INTS = ["-3", "0", "1", "4", "+5", "007", "100", "9007199254740992", "-9007199254740992"]
GOOD_DOUBLES = ["0", "0.01", "0.05", "1.", ".5", "1e-3", "0x1p-2", "1_000.5", "1e5_0", "-1e300", "3"]


@st.composite
def good_space(draw) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["int", "double", "categorical", "discrete"]))
    if kind in ("int", "double"):
        pool = GOOD_INTS if kind == "int" else GOOD_DOUBLES
        low, high = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)),
                           key=parse_float)
        space: dict[str, Any] = {"min": low, "max": high}
        if draw(st.booleans()):
            space["step"] = draw(st.sampled_from(["1", "2", "7"] if kind == "int" else ["0.01", "1", "0x1p-4", "1e-9"]))
        if draw(st.integers(0, 3)) == 0:
            space["distribution"] = draw(st.sampled_from(["uniform", "logUniform", "normal", "logNormal"]))
        return kind, space
    values = draw(st.lists(st.sampled_from(GOOD_DOUBLES) if kind == "discrete" else st.text(min_size=1, max_size=6),
                           min_size=1, max_size=5, unique=True))
    return kind, {"list": values}


@st.composite
def wild_space(draw) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["int", "double", "categorical", "discrete", "unknown"]))
    space: dict[str, Any] = {}
    if kind in ("int", "double") or draw(st.booleans()):
        for key in ("min", "max", "step"):
            if draw(st.integers(0, 3)):  # mostly present
                space[key] = draw(numbers)
        if draw(st.booleans()):
            space.pop("step", None)
    if kind in ("categorical", "discrete") or draw(st.integers(0, 5)) == 0:
        space["list"] = draw(st.lists(st.one_of(numbers, st.text(max_size=6)), max_size=6))
    if draw(st.booleans()):
        space["distribution"] = draw(st.sampled_from(["uniform", "logUniform", "normal", "logNormal", "", "x"]))
    return kind, space


@st.composite
def experiments(draw) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    spec = doc["spec"]
    for i in range(3):  # the names stay: the trial template refers to them
        kind, space = draw(mostly(good_space(), wild_space()))
        spec["parameters"][i]["parameterType"] = kind
        spec["parameters"][i]["feasibleSpace"] = space
    for i in range(draw(st.integers(0, 2))):
        kind, space = draw(mostly(good_space(), wild_space()))
        name = draw(mostly(st.just(f"extra{i}"), names))
        spec["parameters"].append({"name": name, "parameterType": kind, "feasibleSpace": space})
    budget = draw(st.integers(1, 6))
    good_counts = {"maxTrialCount": budget, "parallelTrialCount": draw(st.integers(1, budget)),
                   "maxFailedTrialCount": draw(st.integers(0, budget))}
    for key, good in good_counts.items():
        value = draw(mostly(st.just(good), counts))
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    objective = spec["objective"]
    objective["objectiveMetricName"] = draw(names)
    objective["additionalMetricNames"] = draw(mostly(st.just(["loss"]), st.lists(names, max_size=3)))
    if draw(st.integers(0, 3)) == 0:
        objective["goal"] = draw(st.floats(allow_nan=True, allow_infinity=True))
    algorithm = draw(st.sampled_from(ALGORITHMS))
    spec["algorithm"] = {"algorithmName": algorithm}
    if draw(st.integers(0, 3)) == 0:
        spec["algorithm"]["algorithmSettings"] = [
            {"name": name, "value": draw(mostly(st.sampled_from(["1", "2", "3", "0.5", "gp", "ei"]), numbers))}
            for name in draw(st.lists(seldom(st.sampled_from(ALGORITHM_SETTINGS[algorithm]), names),
                                      min_size=1, max_size=2, unique=True))]
    _draw_metadata(draw, doc)
    _draw_trial_template(draw, spec)
    if draw(st.integers(0, 3)) == 0:
        spec["earlyStopping"] = draw(early_stopping())
    if draw(st.integers(0, 4)) == 0:
        spec["resumePolicy"] = draw(seldom(st.sampled_from(["Never", "LongRunning", "FromVolume"]),
                                           st.sampled_from(["", "never", "Always", "x" * 300])))
    if draw(st.integers(0, 9)) == 5:
        spec["nasConfig"] = draw(nas_config())
        if draw(st.booleans()):
            spec.pop("parameters")  # Katib's NAS experiments have no parameters
    collector = draw(mostly(st.just("default"), st.sampled_from(["StdOut", "File", "TensorFlowEvent", "Push"])))
    if collector != "default":
        path = draw(st.one_of(st.sampled_from(["/", "/tmp/m.log", "/var/log/", "/a/../b", "relative", "/tmp/x\n",
                                               "/tmp/tf", "//"]), st.text(max_size=10)))
        source: dict[str, Any] = {}
        if collector in ("File", "TensorFlowEvent"):
            source["fileSystemPath"] = {"path": path, "kind": "File" if collector == "File" else "Directory"}
            if collector == "File" and draw(st.booleans()):
                source["fileSystemPath"]["format"] = draw(st.sampled_from(["TEXT", "JSON"]))
        if collector in ("StdOut", "File") and draw(st.integers(0, 3)) == 0:
            source["filter"] = {"metricsFormat": [r"([\w.*]+)=([0-9.]+)"]}
        spec["metricsCollectorSpec"] = {"collector": {"kind": collector}, **({"source": source} if source else {})}
    return doc


ALGORITHMS = ["random", "grid", "sobol", "tpe", "bayesianoptimization", "hyperband", "cmaes"]
ALGORITHM_SETTINGS = {
    "random": ["random_state"], "grid": ["random_state"], "sobol": ["random_state"],
    "tpe": ["random_state", "n_startup_trials", "n_ei_candidates"],
    "bayesianoptimization": ["random_state", "base_estimator", "n_initial_points", "acq_func", "acq_optimizer"],
    "hyperband": ["r_l", "eta", "resource_name"],
    "cmaes": ["random_state", "sigma", "restart_strategy"],
}
EARLY_STOPPING_SETTINGS = {"medianstop": ["min_trials_required", "start_step"],
                           "asha": ["min_resource", "reduction_factor", "min_early_stopping_rate"]}
DNS_NAMES = st.sampled_from(["fuzz-exp", "a", "exp-1", "x" * 40])
WILD_NAMES = st.one_of(st.sampled_from(["", "A", "-x", "x-", "a.b", "a_b", "x" * 41, "x" * 64, "x" * 300, "a/b", "a b", "ü"]),
                       st.text(max_size=10))


def _draw_metadata(draw, doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = draw(seldom(DNS_NAMES, WILD_NAMES))
    if draw(st.integers(0, 2)) == 0:
        doc["metadata"]["namespace"] = draw(seldom(st.sampled_from(["default", "team-a"]), WILD_NAMES))


def _draw_trial_template(draw, spec: dict[str, Any]) -> None:
    template = spec["trialTemplate"]
    template["primaryContainerName"] = draw(seldom(st.just("training-container"),
                                                   st.sampled_from(["", "other", "Training-Container"])))
    references = ["lr", "layers", "optimizer", "${trialSpec.Name}", "${trialSpec.Namespace}",
                  "${trialSpec.Kind}", "${trialSpec.APIVersion}", "${trialSpec.Labels[app]}",
                  "${trialSpec.Annotations[note]}"]
    wild_references = st.sampled_from(["", "nope", "${trialSpec.Nope}", "${trialSpec.Labels[]}", "LR", "lr "])
    for entry in template["trialParameters"]:
        if draw(st.integers(0, 9)) == 5:  # may repeat another's reference: Katib refuses that
            entry["reference"] = draw(seldom(st.sampled_from(references), wild_references))
        if draw(st.integers(0, 40)) == 20:
            entry["name"] = draw(st.sampled_from(["", "learningRate", "a b", "x" * 300]))
    if draw(st.integers(0, 25)) == 12:  # a placeholder naming no trial parameter
        template["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"].append(
            draw(st.sampled_from(["--x=${trialParameters.missing}", "--x=${trialParameters.}", "${trialParameters"])))
    if draw(st.integers(0, 3)) == 0:
        template["successCondition"] = draw(seldom(st.sampled_from([
            'status.conditions.#(type=="Complete")#|#(status=="True")#', "status.succeeded",
            'status.conditions.#(type=="Failed")#|#(status=="True")#']), st.sampled_from(["", "((", "status.[", "#("])))
    if draw(st.integers(0, 5)) == 0:
        template["failureCondition"] = draw(seldom(
            st.just('status.conditions.#(type=="Failed")#|#(status=="True")#'), st.sampled_from(["", "((("])))


@st.composite
def early_stopping(draw) -> dict[str, Any]:
    name = draw(seldom(st.sampled_from(["medianstop", "asha"]), st.sampled_from(["", "nope", "Medianstop"])))
    known = EARLY_STOPPING_SETTINGS.get(name, ["min_trials_required"])
    settings = [{"name": setting, "value": draw(mostly(st.sampled_from(["1", "2", "3", "4"]), numbers))}
                for setting in draw(st.lists(seldom(st.sampled_from(known), names), max_size=2, unique=True))]
    return {"algorithmName": name, **({"algorithmSettings": settings} if settings else {})}


@st.composite
def nas_config(draw) -> dict[str, Any]:
    operation = {"operationType": draw(mostly(st.sampled_from(["convolution", "reduction"]), names)),
                 "parameters": [{"name": "filter_size", "parameterType": "categorical",
                                 "feasibleSpace": {"list": draw(mostly(st.just(["3", "5"]),
                                                                       st.lists(st.text(max_size=3), max_size=3)))}}]}
    config: dict[str, Any] = {"operations": draw(mostly(st.just([operation]), st.just([])))}
    if draw(st.booleans()):
        config["graphConfig"] = {"numLayers": draw(mostly(st.integers(1, 8), counts)),
                                 "inputSizes": [32, 32, 3], "outputSizes": [10]}
    return config


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(code, details)
        self.code, self.details = code, details


class _Context:
    """What the servicer asks of a grpc.ServicerContext."""

    def abort(self, code, details):
        raise _Aborted(code, details)

    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float:
        return 30.0

    def invocation_metadata(self) -> tuple:
        return ()


@pytest.fixture(scope="module")
def registry():
    return Registry.load()


@pytest.fixture(scope="module")
def servicer():
    return SuggestionServicer(ALGORITHMS, capacity=8)


def _early_stopping_served(message: api_pb2.Experiment, note) -> None:
    """An admitted early-stopping spec: the service validates it, OK or a terminal refusal."""
    name = message.spec.early_stopping.algorithm_name
    if not name:
        return
    try:
        EarlyStoppingServicer(algorithm=name).ValidateEarlyStoppingSettings(
            api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=message.spec.early_stopping), _Context())
    except _Aborted as aborted:
        note(f"early stopping: {aborted.code.name}")
        assert aborted.code in TERMINAL, f"{aborted.code}: {aborted.details}"
        return
    note("early stopping: OK")


def _served(servicer: SuggestionServicer, experiment, note=lambda label: None) -> None:
    message = rb.validate_request(experiment).experiment
    _early_stopping_served(message, note)
    count = min(experiment.spec.parallel_trial_count or 1, experiment.spec.max_trial_count or 1)
    try:
        servicer.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=message), _Context())
        reply = servicer.GetSuggestions(
            api_pb2.GetSuggestionsRequest(experiment=message, current_request_number=count,
                                          total_request_number=count), _Context())
    except _Aborted as aborted:
        note(f"served: {aborted.code.name}")
        assert aborted.code in TERMINAL, f"{aborted.code}: {aborted.details}"
        assert len(aborted.details) <= MAX_ERROR_CHARS + 40
        return
    note("served: OK")
    assert len(reply.parameter_assignments) == count
    _trial_can_start(experiment, reply.parameter_assignments[0], note)


def _trial_can_start(experiment, assignment: api_pb2.GetSuggestionsReply.ParameterAssignments, note) -> None:
    """The experiment controller can build the assignment's Trial (its job rendered from the
    template), and the trial controller can evaluate the job's success/failure conditions."""
    trial = build_trial(experiment, TrialAssignment(
        name=f"{experiment.metadata.name[:30]}-abcd1234", parameter_assignments=[
            ParameterAssignment(name=a.name, value=a.value) for a in assignment.assignments]))
    if experiment.spec.trial_template is not None:
        assert trial.spec.run_spec, "admitted, but the trial's job renders to nothing"
    for condition in (trial.spec.success_condition, trial.spec.failure_condition):
        if condition:
            check_condition(condition)
    note("trial: built")


@settings(max_examples=int(os.environ.get("SEXTANT_FUZZ_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=experiments())
def test_every_spec_is_rejected_by_field_or_can_be_served(doc, registry, servicer):
    try:
        experiment = admit_experiment(doc, registry=registry)
    except Invalid as err:
        assert err.errors
        for message in err.errors:
            assert FIELD_RE.match(message), message[:200]
            assert len(message) <= MAX_ERROR_CHARS, message[:200]
            assert "Traceback" not in message and "unexpected" not in message
        event("rejected")
        return
    event("admitted")
    _served(servicer, experiment, event)


@pytest.mark.parametrize("field, value", [
    ("parameters[1].feasibleSpace.min", "-9223372036854775809"),
    ("parameters[1].feasibleSpace.max", "1_0"),
    ("parameters[1].feasibleSpace.max", "\uff11\uff10"),
    ("parameters[1].feasibleSpace.min", "\u0660"),
    ("parameters[1].feasibleSpace.max", "9" * 5000),
    ("parameters[0].feasibleSpace.max", "1e400"),
])
def test_issue_numbers_are_rejected_naming_the_field(field, value, registry):
    doc = copy.deepcopy(BASE)
    index = int(field.split("[")[1][0])
    doc["spec"]["parameters"][index]["feasibleSpace"][field.rsplit(".", 1)[1]] = value
    with pytest.raises(Invalid) as err:
        admit_experiment(doc, registry=registry)
    assert any(m.startswith(f"spec.{field}:") for m in err.value.errors), err.value.errors
    assert all(len(m) < 300 for m in err.value.errors)


@pytest.mark.parametrize("value, expected", [
    ("0x1p-2", 0.25), ("1_000.5", 1000.5), ("1.", 1.0), (".5", 0.5), ("1e5_0", 1e50), ("+1.5e+3", 1500.0),
])
def test_go_float_syntax_is_accepted_and_served(value, expected, registry, servicer):
    """What Go's ParseFloat accepts, Sextant accepts too, and the algorithm reads it the same way."""
    assert parse_float(value) == expected
    doc = copy.deepcopy(BASE)
    doc["spec"]["parameters"][0]["feasibleSpace"] = {"min": "0", "max": value}
    experiment = admit_experiment(doc, registry=registry)
    _served(servicer, experiment)
