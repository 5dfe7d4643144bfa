"""Katib's GJSON success/failure conditions on job objects."""

import pytest

from sextant.runtime.job_conditions import (
    Match,
    UnsupportedCondition,
    check_condition,
    default_conditions,
    evaluate,
)

JOB_SUCCESS, JOB_FAILURE = default_conditions("Job")


def job(*conditions: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": list(conditions)}}


def test_defaults_per_kind_match_katib():
    assert JOB_SUCCESS == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert JOB_FAILURE == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert default_conditions("TFJob") == ('status.conditions.#(type=="Succeeded")#|#(status=="True")#',
                                           'status.conditions.#(type=="Failed")#|#(status=="True")#')
    assert default_conditions("PyTorchJob")[0].startswith('status.conditions.#(type=="Succeeded")#')
    assert default_conditions("TrainJob")[0].startswith('status.conditions.#(type=="Complete")#')
    assert default_conditions("Workflow") is None


def test_complete_job_matches_success_with_reason_and_message():
    obj = job({"type": "Complete", "status": "True", "reason": "Done", "message": "all good"})
    assert evaluate(obj, JOB_SUCCESS) == Match("Done", "all good")
    assert evaluate(obj, JOB_FAILURE) is None


def test_condition_with_status_false_does_not_match():
    obj = job({"type": "Failed", "status": "False", "reason": "X"})
    assert evaluate(obj, JOB_FAILURE) is None


def test_failed_job_matches_failure_taking_the_first_element():
    obj = job({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"},
              {"type": "Failed", "status": "True", "reason": "Second"})
    assert evaluate(obj, JOB_FAILURE) == Match("BackoffLimitExceeded", "too many")


def test_missing_status_is_no_match_not_an_error():
    assert evaluate({"kind": "Job"}, JOB_SUCCESS) is None
    assert evaluate({"kind": "Job", "status": {}}, JOB_FAILURE) is None


def test_single_object_result_matches():
    obj = job({"type": "Complete", "status": "True", "reason": "R"})
    assert evaluate(obj, 'status.conditions.#(type=="Complete")') == Match("R", "")


def test_scalar_result_is_no_match():
    assert evaluate({"status": {"phase": "Succeeded"}}, "status.phase") is None


def test_argo_workflow_example_form():
    wf = {"status": {"phase": "Succeeded", "message": "ok"}}
    assert evaluate(wf, 'status.[@this].#(phase=="Succeeded")#') == Match("", "ok")
    assert evaluate(wf, 'status.[@this].#(phase=="Failed")#') is None


@pytest.mark.parametrize("expression", [
    'status.conditions.#(type%"Comp*")#',
    "status.conditions.0",
    'status.conditions.#(type!="Failed")#|#(status=="True")#',
])
def test_supported_forms_are_accepted(expression):
    assert check_condition(expression) == expression


@pytest.mark.parametrize("expression", [
    "status.conditions.@reverse",
    "status..conditions",
    'status.conditions.#(type=="Complete"',
    "status.{a,b}",
    "status.cond*",
    "",
])
def test_unsupported_forms_raise_naming_the_expression(expression):
    with pytest.raises(UnsupportedCondition) as err:
        evaluate(job(), expression)
    if expression:
        assert repr(expression) in str(err.value)
