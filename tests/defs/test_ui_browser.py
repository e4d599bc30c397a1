"""The Dagster UI in a real browser: `dagster dev` on loopback with a temporary
DAGSTER_HOME, a task partition launched through GraphQL, and headless Chromium
screenshots of the asset graph and of one asset's page (saved under
test-artifacts/ui/). Asserts on the rendered page text that every asset is shown."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from robosteer_assets.droid import synthetic

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install.sh installs it)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())
    assert "errors" not in out, out
    return out["data"]


def _chromium(url: str, *, screenshot: Path | None = None, dump_dom: bool = False) -> str:
    args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", f"--user-data-dir={ARTIFACTS / '.profile'}",
            "--window-size=1600,1000", "--virtual-time-budget=25000"]
    args += [f"--screenshot={screenshot}"] if screenshot else []
    args += ["--dump-dom"] if dump_dom else []
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=180)
    return out.stdout


@pytest.fixture()
def dagster_dev(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path / "data"
    synthetic.write_task(data / "demos", "pick_cube", n=3, T=24, image_size=64, control_hz=6.0)
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ROBOSTEER_DATA_ROOT": str(data)}
    log = open(tmp_path / "dagster_dev.log", "w")
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            try:
                data_ = _gql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }")
                entries = data_["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            assert time.time() < deadline, "dagster dev did not load the code location in time"
            time.sleep(2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_ui_graph_and_asset_page(dagster_dev):
    from dagster_graphql import DagsterGraphQLClient
    from dagster import AssetKey, DagsterRunStatus

    from robosteer_assets.definitions import defs

    port = dagster_dev
    repo = {"repositoryLocationName": "robosteer_assets", "repositoryName": "__repository__"}
    added = _gql(port, """mutation($sel: RepositorySelector!) { addDynamicPartition(repositorySelector: $sel,
        partitionsDefName: "task", partitionKey: "pick_cube") { __typename } }""", {"sel": repo})
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"

    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_id = client.submit_job_execution(
        "task_pipeline", repository_location_name="robosteer_assets", repository_name="__repository__",
        run_config={"ops": {"raw_episodes": {"config": {"min_episodes": 3, "read": {"image_size": 32}}}}},
        tags={"dagster/partition": "pick_cube"},
        asset_selection=[AssetKey("raw_episodes"), AssetKey("keyframes")],
    )
    deadline = time.time() + 300
    while (status := client.get_run_status(run_id)) not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
        assert time.time() < deadline, f"run {run_id} still {status}"
        time.sleep(2)
    assert status == DagsterRunStatus.SUCCESS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    _chromium(f"{base}/asset-groups", screenshot=ARTIFACTS / "asset_graph.png")
    _chromium(f"{base}/assets/raw_episodes?partition=pick_cube", screenshot=ARTIFACTS / "asset_raw_episodes.png")
    groups = sorted({n.group_name for n in defs.get_repository_def().asset_graph.asset_nodes})
    for g in groups:  # one picture per group shows every asset node (the global view collapses groups)
        _chromium(f"{base}/locations/robosteer_assets/asset-groups/{g}", screenshot=ARTIFACTS / f"group_{g}.png")
    for png in ["asset_graph.png", "asset_raw_episodes.png"] + [f"group_{g}.png" for g in groups]:
        assert (ARTIFACTS / png).stat().st_size > 10_000, f"{png} looks blank"

    catalog = _chromium(f"{base}/assets", dump_dom=True)
    keys = [k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()]
    missing = [k for k in keys if k.split("/")[-1] not in catalog]
    assert not missing, f"asset catalog page does not show {missing}"
