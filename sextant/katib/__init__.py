"""Katib's status vocabulary, one module per resource kind.

* ``condition_list``: the bookkeeping rules every kind's ``status.conditions`` follows.
* ``experiment_status``, ``trial_status``, ``suggestion_status``: each kind's condition types,
  reasons, messages, phase predicates (finished / succeeded / active) and the helpers that
  mark a status. Controllers, the CLI, the SDK, the API server and the UI all use these, so a
  reason is spelled in exactly one place.

The predicates accept either a model (``Experiment``, ``Trial``, ``Suggestion``) or the same
resource as a JSON document (a ``dict``, as the CLI and the HTTP API handle them).
"""
