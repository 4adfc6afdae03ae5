"""data.service against its own OpenAPI spec: schemathesis, all checks, on the live uvicorn server on loopback."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("schemathesis")

from mlsys.data.service import FlightsClient, start_server

MAX_EXAMPLES = 150  # per operation and phase: about 400 requests, ten-odd seconds on a loaded 2-core machine


@pytest.fixture(scope="module")
def server():
    s = start_server("2013-01-01", "2013-01-02")
    yield s
    s.stop()


@pytest.mark.server
def test_schemathesis_all_checks_find_no_violation(server, tmp_path):
    report = tmp_path / "schemathesis.json"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
           "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "2013", "--workers", "1",
           "--continue-on-failure", "--generation-database", "none", "--request-timeout", "20", "--no-color",
           "--report", "json", "--report-json-path", str(report)]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    failures = [(f["code"], f["title"], f["operations"]) for f in result["failures"]]
    assert run.returncode == 0 and failures == [] and result["errors"] == [], (failures, run.stdout[-8000:])
    assert result["operations"]["tested"] == result["operations"]["total"] == 3
    assert result["test_cases"]["generated"] >= 2 * MAX_EXAMPLES and result["test_cases"]["errored"] == 0
    # the server kept serving through every bad request, and none of them was a server error
    assert server.alive()
    with FlightsClient(server.url, retries=0) as client:
        assert client.get("/health")["status"] == "ok"
    assert "Traceback" not in server.log_path.read_text(errors="replace")
