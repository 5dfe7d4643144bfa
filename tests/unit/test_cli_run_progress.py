"""`sextant run`'s progress display says what the experiment is waiting for: while its algorithm
service starts, the Created condition's message (written by the experiment controller from the
Suggestion's DeploymentReady condition) shows in the plain line and in the terminal's state
column; Katib's routine words do not."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, TextColumn

from sextant.cli.run_cmd import live_state, progress_line, state_message
from sextant.katib import experiment_status, suggestion_status
from sextant.resources.admission import admit_experiment
from sextant.resources.models import AlgorithmSpec, ObjectMeta, Suggestion, SuggestionSpec, to_doc

STARTING = "the algorithm service default/random is starting (7 s so far)"


def _waiting_experiment(experiment_doc) -> dict:
    """An experiment Created 7 s after its Suggestion began starting the algorithm service."""
    experiment = admit_experiment(experiment_doc)
    suggestion = Suggestion(metadata=ObjectMeta(name=experiment.metadata.name, namespace="default"),
                            spec=SuggestionSpec(algorithm=AlgorithmSpec(algorithm_name="random"), requests=3))
    suggestion_status.mark_service_starting(suggestion, "default/random", now="2024-01-02T12:00:00Z")
    suggestion_status.mark_service_starting(suggestion, "default/random", now="2024-01-02T12:00:07Z")
    experiment_status.mark_created(experiment, now="2024-01-02T12:00:00Z")
    assert experiment_status.mark_waiting_for_algorithm(experiment, suggestion, now="2024-01-02T12:00:07Z")
    return to_doc(experiment)


def test_the_plain_line_says_the_algorithm_service_is_starting(experiment_doc):
    exp = _waiting_experiment(experiment_doc)
    message = (exp["status"]["conditions"][-1]["message"])
    assert message.startswith(experiment_status.MSG_CREATED) and message.endswith(STARTING)
    assert state_message(exp) == message
    assert progress_line(exp, []) == f"Created: 0/12 trials finished, 0 active - {message}"


def test_the_terminal_state_column_says_it_too(experiment_doc):
    exp = _waiting_experiment(experiment_doc)
    state = live_state(exp, [])
    assert state.startswith("Created, 0 active - ") and state.endswith(STARTING)
    console = Console(record=True, width=300, force_terminal=True)
    progress = Progress(TextColumn("{task.fields[state]}"), console=console)
    progress.add_task("e", total=12, state=state)
    console.print(progress)
    assert STARTING in console.export_text()


def test_routine_katib_messages_are_not_repeated(experiment_doc):
    experiment = admit_experiment(experiment_doc)
    experiment_status.mark_created(experiment)
    exp = to_doc(experiment)
    assert state_message(exp) == ""
    assert progress_line(exp, []) == "Created: 0/12 trials finished, 0 active"
    experiment_status.mark_running(experiment)
    assert state_message(to_doc(experiment)) == ""
