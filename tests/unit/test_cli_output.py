"""kubectl's output habits in the CLI, without a server: -o name|jsonpath|custom-columns, the
NAMESPACE column with -A, numbers to six significant digits, failed trials' reasons, and a
refused connection reported at once."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from sextant.cli import main as cli
from sextant.cli.errors import BadInput
from sextant.cli.render import failure_lines, number, render_list

NOW = datetime(2024, 1, 2, 12, 0, 0, tzinfo=UTC)


def trial(name: str, namespace: str = "default", value: str | None = "0.837088406085968",
          conditions: list[dict[str, str]] | None = None) -> dict:
    observation = {"metrics": [{"name": "acc", "min": value, "max": value, "latest": value}]} if value else {}
    return {"kind": "Trial", "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2024-01-02T11:58:00Z",
                                          "labels": {"katib.kubeflow.org/experiment": "e"}},
            "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"}},
            "status": {"observation": observation,
                       "conditions": conditions or [{"type": "Succeeded", "status": "True"}]}}


@pytest.mark.parametrize("value, text", [
    ("0.837088406085968", "0.837088"), ("0.877816", "0.877816"), ("-0.0", "0"), ("-0.0000000001", "-1e-10"),
    ("1234567.89", "1.23457e+06"), ("42", "42"), ("3.10", "3.1"), ("n/a", "n/a"), (None, ""),
])
def test_numbers_have_six_significant_digits_and_no_negative_zero(value, text):
    assert number(value) == text


def test_tables_round_objectives_but_yaml_and_json_keep_full_precision():
    docs = [trial("t1")]
    assert "0.837088 " in render_list("Trial", docs, None, now=NOW) + " "
    assert "0.837088406085968" in render_list("Trial", docs, "yaml")
    assert "0.837088406085968" in render_list("Trial", docs, "json")


def test_name_output_is_kubectls():
    out = render_list("Trial", [trial("t1"), trial("t2")], "name")
    assert out.splitlines() == ["trial.kubeflow.org/t1", "trial.kubeflow.org/t2"]
    exp = {"kind": "Experiment", "metadata": {"name": "random"}}
    assert render_list("Experiment", [exp], "name") == "experiment.kubeflow.org/random"


def test_jsonpath_on_lists_and_single_objects():
    docs = [trial("t1"), trial("t2", value="0.5")]
    assert render_list("Trial", docs, "jsonpath={.items[*].metadata.name}") == "t1 t2"
    template = 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.observation.metrics[0].latest}{"\\n"}{end}'
    assert render_list("Trial", docs, template) == "t1\t0.837088406085968\nt2\t0.5\n"
    assert render_list("Trial", docs[:1], "jsonpath={.metadata.name}", single=True) == "t1"
    filtered = 'jsonpath={.items[?(@.metadata.name=="t2")].status.observation.metrics[0].max}'
    assert render_list("Trial", docs, filtered) == "0.5"
    assert render_list("Trial", docs, "jsonpath={.items[-1:].metadata.name}") == "t2"
    with pytest.raises(BadInput, match="unclosed"):
        render_list("Trial", docs, "jsonpath={.items[*].metadata.name")
    with pytest.raises(BadInput, match="range"):
        render_list("Trial", docs, "jsonpath={range .items[*]}{.metadata.name}")


def test_custom_columns():
    docs = [trial("t1"), trial("t2", value=None)]
    out = render_list("Trial", docs, "custom-columns=NAME:.metadata.name,ACC:.status.observation.metrics[0].max")
    assert out.splitlines() == ["NAME   ACC", "t1     0.837088406085968", "t2     <none>"]
    with pytest.raises(BadInput, match="HEADER"):
        render_list("Trial", docs, "custom-columns=NAME")


def test_all_namespaces_adds_the_namespace_column():
    docs = [trial("t1", "a"), trial("t2", "b")]
    lines = render_list("Trial", docs, None, all_namespaces=True, now=NOW).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "STATUS", "OBJECTIVE", "AGE"]
    assert lines[1].split() == ["a", "t1", "Succeeded", "0.837088", "2m"]
    assert render_list("Trial", docs, None, now=NOW).splitlines()[0].split()[0] == "NAME"


def test_failed_trial_lines_carry_reason_message_and_the_logs_command():
    failed = trial("t9", "team", value=None, conditions=[
        {"type": "Running", "status": "False"},
        {"type": "Failed", "status": "True", "reason": "TrialFailed. Job reason: Error",
         "message": "Trial has failed. Job message: exit code 3\nLast lines of output:\nboom"}])
    lines = failure_lines(failed, "team")
    assert lines[0] == "  t9: Failed (TrialFailed. Job reason: Error)"
    assert "    boom" in lines and lines[-1] == "    whole log: sextant logs t9 -n team"


def test_bad_output_format_is_bad_input(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--data-dir", "/nonexistent", "get", "trials", "-o", "table"])
    assert exit.value.code == 2 and "custom-columns" in capsys.readouterr().err


def test_a_refused_connection_is_an_immediate_clear_error(capsys, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = cli.main(["--data-dir", str(tmp_path), "--server", f"127.0.0.1:{port}", "get", "experiments"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"connection refused by 127.0.0.1:{port}" in err and "retry" not in err


def test_a_slow_server_gets_a_note_while_the_command_waits(capsys, tmp_path, monkeypatch):
    from sextant.cli import context

    monkeypatch.setattr(context, "SLOW_SECONDS", 0.3)
    monkeypatch.setattr(context, "CALL_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setenv("SEXTANT_CLI_RETRY_SECONDS", "0")
    with socket.socket() as server:  # accepts connections (the kernel's backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        code = cli.main(["--data-dir", str(tmp_path), "--server", address, "get", "experiments"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"waiting for the server at {address}" in err and "cannot reach the server" in err
