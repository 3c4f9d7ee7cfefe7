"""The API contract, fuzzed: schemathesis against a real server on the shipped models.

Every operation of the served /openapi.json goes through schemathesis's examples, coverage,
fuzzing and stateful phases with five checks: no 5xx, only documented status codes and
content types, bodies that match their response schemas, and invalid requests rejected with
a 4xx. The run is seeded (tests/fuzz/schemathesis.toml), so a failure reproduces with the
command it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import ROOT, shipped_models_dir, start_server, stop_server

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
MIN_REQUESTS = 5000
CONFIG = Path(__file__).with_name("schemathesis.toml")  # seed, examples per phase, hooks

pytestmark = pytest.mark.slow


def schemathesis_run(url: str, models: Path, reports: Path):
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG),
        "run", f"{url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--phases", ",".join(PHASES),
        "--report", "json,ndjson",
        "--report-dir", str(reports),
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTSERVE_MODEL_DIR": str(models)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return result, command


def requests_sent(ndjson: Path) -> int:
    """HTTP requests recorded in the NDJSON event stream, one interaction each."""
    count = 0
    with ndjson.open() as events:
        for line in events:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if finished:
                count += len(finished["recorder"].get("interactions", {}))
    return count


@pytest.mark.timeout(1800)  # about 3 minutes on an idle 2-core machine; far more on a busy one
def test_the_served_contract_holds_under_fuzzing(tmp_path):
    models = shipped_models_dir()
    server = start_server(models, tmp_path / "server.log")
    try:
        result, command = schemathesis_run(server.url, models, tmp_path / "reports")
    finally:
        stop_server(server)
    output = result.stdout[:10000] + result.stdout[10000:][-2000:] + result.stderr[-3000:]
    report = json.loads(next((tmp_path / "reports").glob("json-*.json")).read_text())
    sent = requests_sent(next((tmp_path / "reports").glob("ndjson-*.ndjson")))
    print(f"schemathesis {report['schemathesis_version']}: {sent} requests, "
          f"{report['test_cases']['generated']} test cases, seed {report['seed']}")  # fmt: skip
    assert result.returncode == 0, f"{' '.join(command)}\n{output}"
    assert report["test_cases"]["with_failures"] == 0, output
    assert report["test_cases"]["errored"] == 0, output
    assert not report["errors"], output
    assert not report["warnings"]["validation_mismatch"], output
    for phase in PHASES:
        assert report["phases"][phase]["status"] == "success", (phase, output)
    assert sent >= MIN_REQUESTS, f"only {sent} requests were sent\n{output}"
    assert "500 Internal" not in (tmp_path / "server.log").read_text()
