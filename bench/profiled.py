"""Runs a Sextant service module under yappi (CPU clock, every thread) and writes its profile
on SIGTERM: ``python -m bench.profiled OUT.pstat services.db_manager --port ...``.

Used by ``e2e_throughput.py --profile DIR`` to see where each process spends its CPU per trial.
yappi is a development tool, not a dependency: ``pip install yappi`` first.
"""

from __future__ import annotations

import atexit
import runpy
import sys

import yappi


def main() -> None:
    out, module, *args = sys.argv[1:]
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)

    def save() -> None:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")

    atexit.register(save)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
