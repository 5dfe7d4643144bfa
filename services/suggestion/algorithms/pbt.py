"""``pbt``: Population Based Training with Katib's settings, labels and checkpoint hand-over.

Settings (Katib's names and messages):

* ``suggestion_trial_dir`` (required): where a trial finds its checkpoint directory. The
  trial controller mounts ``<experiment>/<trial>`` of the suggestion's volume there (locally:
  rewrites that path in the trial's command to a directory of the data dir).
* ``n_population`` (required, int >= 5): trials per generation.
* ``truncation_threshold`` (required, float in [0, 1]): the worst fraction of a generation is
  replaced by copies of the best fraction (exploit); the others perturb their own values
  (explore).
* ``resample_probability`` (optional, float in [0, 1]): unset, explore multiplies numbers by
  0.8 or 1.2 and moves list values to a neighbour; set, explore redraws each parameter from the
  search space with this probability and keeps it otherwise.
* ``random_state`` (optional, int >= 0; Sextant's addition): makes the answer depend only on
  the seed and the request.

Every trial carries two labels: ``pbt.suggestion.katib.kubeflow.org/generation`` and, from
generation 1 on, ``pbt.suggestion.katib.kubeflow.org/parent``: the trial whose checkpoint
directory was copied into the new trial's (for exploit that is the better trial whose values
are copied; Katib's service names the replaced trial there instead). Trials are named
``<experiment>-<uuid4>``, as Katib's service names them.

The state is the request: the labels the trials carry (in ``trial.spec.labels``) give each
trial's generation, so a restarted service, or one serving many experiments, continues where
the population is. As in Katib's service, a generation is complete once ``n_population`` of its
trials have finished (failed and killed ones do not count, so they are made up for): new
trials then belong to the next generation and are derived from the finished trials of this one.
Until then new trials join the newest generation, derived from the generation before it
(random draws in generation 0), so a request never waits for a running trial and the
population moves on as trials finish. Deriving picks a finished trial at random: if it is in the
worst ``truncation_threshold`` quantile, the new trial copies the values and checkpoint of a
random trial of the best quantile; otherwise it explores from its own values and checkpoint.

Checkpoints live in ``$SEXTANT_STATE_DIR/<experiment>/<trial>`` (Katib: ``/opt/katib/data``,
the suggestion's volume): each new trial's directory is created empty or as a copy of its
parent's before the trial is suggested.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from sextant.api import api_pb2
from sextant.resources.numbers import excerpt

from .base import Algorithm, InvalidSettings, SuggestResult, settings_of
from .random_search import seeded_rng
from .search_space import Param, SearchSpace, assignment_of, completed_trials, loss

NAME = "pbt"
GENERATION_LABEL = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT_LABEL = "pbt.suggestion.katib.kubeflow.org/parent"
REQUIRED = ("suggestion_trial_dir", "n_population", "truncation_threshold")
DATA_PATH = "/opt/katib/data"  # Katib's mount of the suggestion volume
PERTURB_FACTORS = (0.8, 1.2)


def validation_errors(settings: dict[str, str]) -> list[str]:
    """Katib's messages; each names its setting."""
    missing = [k for k in REQUIRED if k not in settings]
    if missing:
        return [f"Required params missing: {', '.join(missing)}"]
    errors = []
    try:
        if int(settings["n_population"]) < 5:
            errors.append("Param(n_population) should be >= 5")
    except ValueError:
        errors.append(f"failed to validate n_population({_shown(settings['n_population'])}): must be an integer")
    if not _in_unit_interval(settings["truncation_threshold"]):
        errors.append("Param(truncation_threshold) should be between 0 and 1, inclusive")
    if "resample_probability" in settings and not _in_unit_interval(settings["resample_probability"]):
        errors.append("Param(resample_probability) should be null to perturb at 0.8 or 1.2, "
                      "or be between 0 and 1, inclusive, to resample")
    if "random_state" in settings:
        try:
            if int(settings["random_state"]) < 0:
                errors.append("random_state should be great or equal than zero")
        except ValueError:
            errors.append(f"failed to validate random_state({_shown(settings['random_state'])}): must be an integer")
    return errors[:1]  # Katib's service answers the first problem only


def _shown(raw: str) -> str:
    return raw if len(raw) <= 40 else excerpt(raw)


def _in_unit_interval(text: str) -> bool:
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


def perturb(param: Param, value: str, rng: np.random.Generator) -> str:
    """Katib's explore step for one value: x0.8 or x1.2 (clipped), or a neighbouring list item."""
    if param.numeric:
        return param.format(float(value) * PERTURB_FACTORS[int(rng.integers(2))])
    index = param.choices.index(value) if value in param.choices else 0
    return param.choices[(index + (1 if rng.integers(2) else -1)) % len(param.choices)]


class PBT(Algorithm):
    name = NAME
    deterministic = False  # without random_state the trial names are fresh uuid4s
    invalid_settings_example = {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "4",
                                "truncation_threshold": "0.2"}

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return validation_errors(settings_of(experiment))

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = settings_of(experiment)
        errors = validation_errors(settings)
        if errors:
            raise InvalidSettings("; ".join(errors))
        population = int(settings["n_population"])
        threshold = float(settings["truncation_threshold"])
        resample = float(settings["resample_probability"]) if "resample_probability" in settings else None
        seed = int(settings["random_state"]) if "random_state" in settings else None
        rng = seeded_rng(seed, len(trials))
        space = self.search_space(experiment)
        newest = max((generation_of(t) for t in trials), default=0)
        finished: dict[int, list[tuple[api_pb2.Trial, float]]] = {}
        for t, value in completed_trials(experiment, trials):
            finished.setdefault(generation_of(t), []).append((t, loss(experiment, value)))
        # The next generation starts once the newest has n_population finished members; until
        # then the newest one grows, so a request never waits for a running trial.
        generation = newest + 1 if len(finished.get(newest, [])) >= population else newest
        pool = finished.get(generation - 1, [])
        taken = self.taken_points(space, trials)
        result = SuggestResult([], trial_names=[], labels=[])
        for _ in range(count):
            if not pool:
                point, parent = space.sample_untaken(rng, taken), None
                taken.add(space.key(point))
            else:
                point, parent = derive(space, pool, threshold, resample, rng)
            name = f"{experiment.name}-{trial_uuid(rng if seed is not None else None)}"
            labels = {GENERATION_LABEL: str(generation)}
            if parent is not None:
                labels[PARENT_LABEL] = parent
            prepare_checkpoint(experiment.name, name, parent)
            result.assignments.append(point)
            result.trial_names.append(name)  # type: ignore[union-attr]  # set above
            result.labels.append(labels)  # type: ignore[union-attr]  # set above
        return result


def generation_of(trial: api_pb2.Trial) -> int:
    """The generation label of a trial; 0 when it has none (or a bad one)."""
    try:
        return max(0, int(trial.spec.labels.get(GENERATION_LABEL, "0")))
    except ValueError:
        return 0


def derive(space: SearchSpace, pool: list[tuple[api_pb2.Trial, float]], threshold: float,
           resample: float | None, rng: np.random.Generator) -> tuple[dict[str, str], str]:
    """A new member from a finished generation: (its values, the trial whose checkpoint it takes)."""
    losses = [value for _, value in pool]
    best_bound, worst_bound = np.quantile(losses, (threshold, 1.0 - threshold))
    base, base_loss = pool[int(rng.integers(len(pool)))]
    if base_loss > worst_bound:  # exploit: take over a trial of the best quantile
        donors = [t for t, value in pool if value <= best_bound]
        donor = donors[int(rng.integers(len(donors)))]
        return assignment_of(donor), donor.name
    values = assignment_of(base)
    point = {}
    for param in space.params:
        current = values.get(param.name)
        if current is None or param.check(current) is not None:
            point[param.name] = param.sample(rng)  # the space changed since: draw afresh
        elif resample is None:
            point[param.name] = perturb(param, current, rng)
        elif rng.random() < resample:
            point[param.name] = param.sample(rng)
        else:
            point[param.name] = current
    return point, base.name


def trial_uuid(rng: np.random.Generator | None) -> uuid.UUID:
    if rng is None:
        return uuid.uuid4()
    return uuid.UUID(bytes=rng.bytes(16), version=4)


def data_path() -> Path:
    """Where the suggestion's volume is: the service's state directory, else Katib's mount."""
    return Path(os.environ.get("SEXTANT_STATE_DIR") or DATA_PATH)


def prepare_checkpoint(experiment: str, trial: str, parent: str | None) -> None:
    """Creates the trial's checkpoint directory: a copy of its parent's, or empty."""
    root = data_path() / experiment
    target = root / trial
    try:
        if target.exists():
            shutil.rmtree(target)
        source = root / parent if parent else None
        if source is not None and source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(f"pbt: cannot prepare the checkpoint directory {target}: {exc}") from exc

