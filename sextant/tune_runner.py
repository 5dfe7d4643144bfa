"""The trial process of ``sextant.sdk.tune``: loads the objective, calls it, reports what it returns.

    python -m sextant.tune_runner --spec <data_dir>/tune/<ns>/<name>/trial.json lr=0.05 units=64

The spec file (written by ``build_tune_experiment``) says where the function is (import
reference or source file), the parameter types, fixed parameters, the objective metric and the
collector kind. Values come from the trial template as ``name=value`` arguments.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, cast

from sextant.sdk import convert


def load_function(spec: Mapping[str, Any]) -> Callable[..., Any]:
    if "module" in spec:
        if spec.get("path") and spec["path"] not in sys.path:
            sys.path.insert(0, spec["path"])
        target: Any = importlib.import_module(spec["module"])
        for part in spec["qualname"].split("."):
            target = getattr(target, part)
        return cast(Callable[..., Any], target)
    namespace: dict[str, Any] = {"__name__": "__sextant_objective__"}
    with open(spec["source"], encoding="utf-8") as f:
        code = compile(f.read(), spec["source"], "exec")
    exec(code, namespace)  # noqa: S102 - the user's own function, written by their own tune() call
    return cast(Callable[..., Any], namespace[spec["function"]])


def call(fn: Callable[..., Any], parameters: dict[str, Any]) -> Any:
    """Katib's convention is ``fn(parameters)``; a function whose arguments are the parameter
    names is called with keywords instead."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn(parameters)
    names = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if names and set(names) <= set(parameters) and not (len(names) == 1 and names[0] == "parameters"):
        return fn(**{k: parameters[k] for k in names})
    return fn(parameters)


def report(result: Any, spec: Mapping[str, Any]) -> None:
    if result is None:
        return
    metrics = result if isinstance(result, Mapping) else {spec["objective_metric_name"]: result}
    clean = {}
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SystemExit(f"tune: the objective returned {name}={value!r}, which is not a number") from None
        if not math.isnan(number):
            clean[str(name)] = number
    if not clean:
        return
    if spec.get("collector") == "Push":
        from sextant.report import report_metrics

        report_metrics(clean)
    else:
        for name, number in clean.items():
            print(f"{name}={number!r}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sextant.tune_runner")
    p.add_argument("--spec", required=True)
    p.add_argument("assignments", nargs="*", help="name=value")
    ns = p.parse_args(argv)
    with open(ns.spec, encoding="utf-8") as f:
        spec = json.load(f)
    parameters: dict[str, Any] = dict(spec.get("fixed") or {})
    for item in ns.assignments:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"expected name=value, got {item!r}")
        parameters[name] = convert(value, spec["types"].get(name, ""))
    print(f"tune: calling the objective with {parameters}", flush=True)
    report(call(load_function(spec), parameters), spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def standalone_program(source: str, function: str, *, types: Mapping[str, str], fixed: Mapping[str, Any],
                       metric: str, packages: list[str], index_url: str | None = None) -> str:
    """A Python program that runs one trial of ``tune(base_image=...)`` in any image with Python:
    no Sextant inside, so it carries the objective's source and this module's own ``convert``,
    ``call`` and ``report``. ``packages`` are pip-installed first, inside a container only (a trial
    that falls back to this machine must not change the user's environment: there they are
    checked by ``tune`` instead). Values come as ``name=value`` arguments, metrics go to stdout."""
    from sextant.sdk import convert

    spec = {"types": dict(types), "fixed": dict(fixed), "objective_metric_name": metric, "collector": "StdOut",
            "packages": list(packages), "index_url": index_url, "source": source, "function": function}
    parts = [
        "from __future__ import annotations",
        "import inspect, json, math, os, subprocess, sys",
        "from collections.abc import Callable, Mapping",
        "from typing import Any",
        f"SPEC = json.loads({json.dumps(json.dumps(spec, default=str))})",
        inspect.getsource(convert), inspect.getsource(call), inspect.getsource(report),
        _STANDALONE_MAIN,
    ]
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


_STANDALONE_MAIN = '''
def _main():
    if SPEC["packages"] and os.path.exists("/.dockerenv"):
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   *SPEC["packages"]]
        if SPEC["index_url"]:
            command += ["--index-url", SPEC["index_url"]]
        subprocess.run(command, check=True)
    namespace = {"__name__": "__sextant_objective__"}
    exec(compile(SPEC["source"], "<objective>", "exec"), namespace)
    parameters = dict(SPEC["fixed"])
    for item in sys.argv[1:]:
        name, _, value = item.partition("=")
        parameters[name] = convert(value, SPEC["types"].get(name, ""))
    print(f"tune: calling the objective with {parameters}", flush=True)
    report(call(namespace[SPEC["function"]], parameters), SPEC)


_main()
'''
