"""The bad-input corpus (tests/data/bad/, index.yaml) against every door an experiment can come in by:

(a) ``sextant validate -f FILE``: exit 2, the message names the field;
(b) ``sextant apply -f FILE`` against a running DB manager: exit 2, and nothing is stored;
(c) ResourceStore.Create on the wire with the parsed document, no client-side checks:
    INVALID_ARGUMENT naming the field, and no row written in any table.

Text-level breaks (YAML syntax, duplicate YAML keys, alias bombs) cannot reach (c): the wire takes
parsed JSON. The index says which layers each file is for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from sextant.api import store_pb2, store_pb2_grpc
from sextant.cli.main import main as sextant_main
from sextant.resources.loading import MAX_DOCUMENT_BYTES
from tests.integration.bad_input_support import (
    BAD,
    INDEX,
    names,
    names_field,
    raw_resource,
    sqlite_db_manager,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("bad-input")


@pytest.fixture(scope="module")
def dbm(tmp_path_factory):
    with sqlite_db_manager(tmp_path_factory.mktemp("bad-input")) as running:
        yield running


@pytest.fixture(scope="module")
def stub(dbm):
    channel = grpc.insecure_channel(dbm.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    yield store_pb2_grpc.ResourceStoreStub(channel)
    channel.close()


def test_corpus_is_big_and_indexed():
    files = sorted(p.name for p in BAD.iterdir() if p.suffix in (".yaml", ".json") and p.name not in
                   ("index.yaml", "algorithm_settings.yaml"))
    assert len(files) >= 100
    assert files == sorted(INDEX)
    for name, entry in INDEX.items():
        assert entry["fields"], name
        assert {"validate", "apply"} <= set(entry["layers"]), name
    categories = {entry["category"] for entry in INDEX.values()}
    assert {"syntax", "type", "missing", "range", "unknown", "duplicate", "oversize", "template"} <= categories


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = sextant_main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("name", names("validate"))
def test_validate_rejects(name, capsys):
    code, text = run_cli(capsys, "validate", "-f", str(BAD / name))
    assert code == 2, text
    assert "Traceback" not in text
    for field in INDEX[name]["fields"]:
        assert names_field(text, field), f"{name}: {field!r} not named in:\n{text}"


def test_validate_real_process_rejects_every_file_and_names_each():
    """One real `sextant validate` over the whole corpus: exit 2, every file mentioned."""
    files = [str(BAD / n) for n in sorted(INDEX)]
    args = [a for f in files for a in ("-f", f)]
    done = subprocess.run([sys.executable, "-m", "sextant.cli.main", "validate", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for f in files:
        assert f in done.stderr, f


@pytest.mark.parametrize("name", names("apply"))
def test_apply_rejects_and_stores_nothing(name, dbm, capsys):
    before = dbm.row_counts()
    code, text = run_cli(capsys, "--server", dbm.address, "apply", "-f", str(BAD / name))
    assert code == 2, text
    for field in INDEX[name]["fields"]:
        assert names_field(text, field), f"{name}: {field!r} not named in:\n{text}"
    assert dbm.experiment_names() == []
    assert dbm.row_counts() == before


@pytest.mark.parametrize("name", names("store"))
def test_store_create_rejects_and_writes_nothing(name, dbm, stub):
    doc = yaml.safe_load((BAD / name).read_text())
    before = dbm.row_counts()
    for dry_run in (True, False):
        with pytest.raises(grpc.RpcError) as err:
            stub.Create(store_pb2.CreateRequest(resource=raw_resource(doc), dry_run=dry_run), timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        for field in INDEX[name]["fields"]:
            assert names_field(err.value.details(), field), f"{name}: {field!r} not in {err.value.details()!r}"
    assert dbm.experiment_names() == []
    assert dbm.row_counts() == before


# ---- oversized documents, generated here rather than committed ---------------------------------------

def _valid_doc() -> dict:
    from tests.data.bad.generate import BASE

    return json.loads(json.dumps(BASE))


def test_oversized_file_rejected_by_validate_and_apply(tmp_path, dbm, capsys):
    doc = _valid_doc()
    doc["metadata"]["annotations"] = {"padding": "x" * (MAX_DOCUMENT_BYTES + 10)}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(doc))
    for args in (("validate",), ("--server", dbm.address, "apply")):
        code, text = run_cli(capsys, *args, "-f", str(path))
        assert code == 2 and "larger than the limit" in text, text
    assert dbm.experiment_names() == []


def test_file_over_cli_read_limit_rejected(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    code, text = run_cli(capsys, "validate", "-f", str(path))
    assert code == 2 and "larger than 16 MiB" in text, text


def test_many_parameters_document_over_limit(tmp_path, capsys):
    doc = _valid_doc()
    doc["spec"]["parameters"] = [
        {"name": f"p{i:06d}", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        for i in range(20000)]
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(doc))
    code, text = run_cli(capsys, "validate", "-f", str(path))
    assert code == 2 and "document 1" in text, text


def test_store_refuses_resource_over_its_limit(dbm, stub):
    doc = _valid_doc()
    doc["spec"]["trialTemplate"]["trialSpec"]["metadata"] = {"annotations": {"pad": "y" * (4 * 1024 * 1024)}}
    before = dbm.row_counts()
    with pytest.raises(grpc.RpcError) as err:
        stub.Create(store_pb2.CreateRequest(resource=raw_resource(doc)), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert names_field(err.value.details(), "resource") and "larger than the limit" in err.value.details()
    assert dbm.row_counts() == before


def test_store_refuses_message_over_grpc_limit(dbm, stub):
    """Above the server's message-size limit (8 MiB here) gRPC itself refuses the call."""
    doc = _valid_doc()
    doc["spec"]["pad"] = "z" * (9 * 1024 * 1024)
    with pytest.raises(grpc.RpcError) as err:
        stub.Create(store_pb2.CreateRequest(resource=raw_resource(doc)), timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dbm.experiment_names() == []
    # Still serving.
    assert stub.List(store_pb2.ListRequest(kind="Experiment"), timeout=10).items == []
