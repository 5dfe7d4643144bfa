"""The built wheel is a complete Sextant: installed into a fresh virtual environment, away from
this checkout, its `sextant` command validates a Katib experiment and runs one to the end (the
stack's services, protos, migrations and algorithm registry all come from the wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("wheel")]
ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, f"{argv[:4]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with only the wheel built from this checkout (and its dependencies)."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    if UV:
        _run([UV, "build", "--wheel", "--out-dir", str(dist), str(ROOT)])
    else:
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("sextant-*.whl")
    venv = work / "venv"
    if UV:
        _run([UV, "venv", "-q", "--python", sys.executable, str(venv)])
        # Compiled as pip would: uv leaves it to the first import, and six services importing
        # scipy, optuna and grpc uncompiled at once on a busy machine can outlast the start-up wait.
        _run([UV, "pip", "install", "-q", "--compile-bytecode", "--python", str(venv / "bin" / "python"),
              "-c", str(ROOT / "requirements.lock"), str(wheel)])
    else:
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "requirements.lock"),
              str(wheel)])
    return venv


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEXTANT_", "PYTHON"))}
    env["SEXTANT_HOME"] = str(data)
    return env


def test_wheel_validates_and_runs_an_experiment(installed, tmp_path):
    sextant = str(installed / "bin" / "sextant")
    work = tmp_path / "elsewhere"  # not the checkout: nothing may be imported from it
    work.mkdir()
    (work / "train.py").write_text(textwrap.dedent("""\
        import sys
        x = float(sys.argv[1])
        print(f"score={1 - (x - 0.3) ** 2}")
        """))
    (work / "exp.yaml").write_text(small_experiment("from-wheel", ["python", "train.py", "${trialParameters.x}"],
                                                    max_trials=3, parallel=3))
    data = tmp_path / "data"
    env = _env(data)
    # The Create page's bundled examples come from the package, not from a checkout.
    where = _run([str(installed / "bin" / "python"), "-c", "import sextant, services.web_ui.local_files as f;"
                  " print(sextant.__file__); print(*sorted(e['id'] for e in f.list_examples()))"],
                 cwd=work, env=env)
    assert str(installed) in where.stdout, where.stdout
    bundled = sorted(f"{p.parent.name}/{p.name}" for p in (ROOT / "examples").glob("v*/*.yaml"))
    assert where.stdout.splitlines()[1].split() == bundled
    # The web UI's vendored plotly.js bundle and its licence ship in the wheel too.
    vendored = _run([str(installed / "bin" / "python"), "-c", "from services.web_ui import static;"
                     " print(static.VENDOR / static.CARTESIAN_PLOTLY)"], cwd=work, env=env).stdout.strip()
    assert vendored.startswith(str(installed)) and Path(vendored).is_file(), vendored
    assert (Path(vendored).parent / "plotly.js-LICENSE.txt").is_file()
    valid = _run([sextant, "validate", "-f", "exp.yaml"], cwd=work, env=env)
    assert "valid" in valid.stdout.lower()
    try:
        done = subprocess.run([sextant, "run", "-f", "exp.yaml", "--timeout", "3m"], cwd=work, env=env, timeout=240,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"sextant run exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}" \
            + "".join(f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-1500:]}"
                      for log in sorted((data / "logs").glob("*.log")))
        assert "Succeeded" in done.stdout or "succeeded" in done.stdout.lower(), done.stdout[-2000:]
        trials = _run([sextant, "get", "trials", "-e", "from-wheel", "-o", "json"], cwd=work, env=env)
        assert trials.stdout.count('"TrialSucceeded"') >= 3 or trials.stdout.count("Succeeded") >= 3, trials.stdout[-2000:]
    finally:
        subprocess.run([sextant, "down"], cwd=work, env=env, capture_output=True, check=False, timeout=60)
