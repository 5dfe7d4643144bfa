"""The layering rules docs/architecture.md states, checked on the source.

* ``sextant/`` (the shared library) never imports ``services/`` (the processes built on it).
* Controllers and the CLI reach a runtime only through the ``Runtime`` interface, which both
  runtimes implement completely.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sextant.runtime.base import Runtime
from sextant.runtime.kubernetes import KubernetesRuntime
from sextant.runtime.local import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_shared_library_does_not_import_services():
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.split(".")[0] == "services")
                 for p in (ROOT / "sextant").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_both_runtimes_implement_the_whole_interface():
    for runtime in (LocalRuntime, KubernetesRuntime):
        assert not runtime.__abstractmethods__, runtime
    # Every method a controller may call is declared (and documented) on the interface.
    for name in ("job_spool_dir", "metrics_report_mode", "job_exit_notified", "retire_job", "on_job_exit"):
        member = getattr(Runtime, name)
        assert (member.fget if isinstance(member, property) else member).__doc__, name


def _probes(source: str) -> list[str]:
    """``getattr``/``hasattr`` calls whose object is a runtime or a store, however it is reached
    (``self.runtime``, ``store``, ``app.get("sextant.store")``...)."""
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr") and node.args
            and any(word in ast.unparse(node.args[0]).lower() for word in ("runtime", "store"))]


def test_the_probe_check_sees_a_store_reached_through_the_application():
    source = ('channel = getattr(app.get("sextant.store"), "channel", None)\n'
              'ok = hasattr(self.runtime, "retire_job")\n'
              'fine = getattr(spec, "kind", None)\n')
    assert _probes(source) == ["1: getattr(app.get('sextant.store'), 'channel', None)",
                               "2: hasattr(self.runtime, 'retire_job')"]


def test_controllers_do_not_probe_runtimes_or_stores():
    offenders = [f"{path.relative_to(ROOT)}:{probe}" for path in sorted((ROOT / "services").rglob("*.py"))
                 for probe in _probes(path.read_text())]
    assert offenders == []
