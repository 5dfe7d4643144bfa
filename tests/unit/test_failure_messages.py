"""Failures explain themselves: a failed trial's condition message carries the exit code, a note
and the bounded end of its output; an experiment that fails on maxFailedTrialCount names the
most common trial failure. The words are sextant.katib's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sextant.katib import experiment_status as es
from sextant.katib import trial_status as ts


def test_failed_message_keeps_katibs_words_first():
    assert ts.failed_message("") == "Trial has failed. Job message: "
    assert ts.failed_message("BackoffLimitExceeded") == "Trial has failed. Job message: BackoffLimitExceeded"
    assert ts.failed_message("", exit_code=2) == "Trial has failed. Job message: exit code 2"
    assert ts.failed_message("OOM", exit_code=137, note="n", output_tail="a\nb") == \
        "Trial has failed. Job message: OOM (exit code 137). Note: n\nLast lines of output:\na\nb"
    # The local runtime's message already says the code: it is not repeated.
    assert ts.failed_message("exit code 3", exit_code=3) == "Trial has failed. Job message: exit code 3"


def test_tail_keeps_the_last_lines_within_the_byte_bound():
    output = b"".join(b"line %d\n" % i for i in range(100))
    assert ts.tail_of(output) == "\n".join(f"line {i}" for i in range(90, 100))
    assert ts.tail_of(output, max_bytes=20) == "line 98\nline 99"  # "ne 97" was cut: dropped
    assert ts.tail_of(b"") == "" and ts.tail_of(b"\n\n") == ""
    assert ts.tail_of(b"x" * 5000) == "x" * ts.OUTPUT_TAIL_BYTES  # one long line is kept, cut
    assert ts.tail_of("é\n".encode() * 3 + b"\xff") == "é\né\né\n\ufffd"


@given(st.binary(max_size=6000))
def test_tail_is_always_bounded(output):
    tail = ts.tail_of(output)
    assert tail.count("\n") < ts.OUTPUT_TAIL_LINES
    assert len(tail.encode("utf-8", "surrogatepass")) <= 3 * ts.OUTPUT_TAIL_BYTES  # U+FFFD is 3 bytes


def test_failure_cause_is_reason_message_and_last_output_line():
    message = ts.failed_message("", exit_code=2, output_tail="Traceback\npython3: can't open file '/x.py'")
    assert ts.failure_cause(ts.failed_reason("Error"), message) == "Error: exit code 2: python3: can't open file '/x.py'"
    assert ts.failure_cause("MetricsUnavailable", ts.MSG_METRICS_UNAVAILABLE) == \
        "MetricsUnavailable: Metrics are not available"
    assert ts.failure_cause(ts.failed_reason("Killed"), "") == "Killed"


def test_metrics_unavailable_says_which_metric_and_collector():
    message = ts.metrics_unavailable_message("Validation-accuracy", "StdOut", "epoch 1: loss=0.3")
    assert message == ("Metrics are not available: the objective metric 'Validation-accuracy' was never reported "
                       "(StdOut collector)\nLast lines of output:\nepoch 1: loss=0.3")
    assert ts.failure_cause(ts.REASON_METRICS_UNAVAILABLE, message) == (
        "MetricsUnavailable: Metrics are not available: the objective metric 'Validation-accuracy' was never "
        "reported (StdOut collector): epoch 1: loss=0.3")
    assert ts.metrics_unavailable_message("acc", "Push") == \
        "Metrics are not available: the objective metric 'acc' was never reported (Push collector)"


def test_max_failed_message_names_the_cause_bounded():
    assert es.max_failed_message("", 0, 0) == es.MSG_MAX_FAILED
    assert es.max_failed_message("Error: exit code 2", 3, 4) == \
        "Experiment has failed because max failed count has reached. Most common trial failure (3 of 4): " \
        "Error: exit code 2"
    long = es.max_failed_message("x" * 5000, 1, 1)
    assert long.endswith("x...") and len(long) < len(es.MSG_MAX_FAILED) + es.MAX_CAUSE_CHARS + 60
