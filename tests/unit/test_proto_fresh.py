"""The committed generated code in sextant/api must match proto/ (run `make proto`)."""

from pathlib import Path

from sextant.api import generate


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    written = generate.generate(out_dir=tmp_path)
    stale = [p.name for p in written if p.read_text() != (generate.PACKAGE_DIR / p.name).read_text()]
    assert not stale, f"sextant/api is stale, run `make proto`: {stale}"
