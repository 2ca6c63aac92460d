"""Issue 20: what an operator and a scheduler read is true. A killed run is recorded as failed (result, hand-off file,
MLflow run) with its last success still findable; its kernel and temporary files do not outlive it; plain papermill
refuses what `mlops-nb run` refuses, before any MLflow run; artifacts land in the workspace whatever the current folder."""
import json, os, signal, subprocess, time
from pathlib import Path

import psutil
import pytest

from conftest import BIN, client, latest_result, mlops_nb, run, versions
from mlops_nb.pipeline import pipeline_path


def wait_for(check, timeout=120, every=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = check()
        if v: return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {check}")


def run_file(project):
    "The kernel's result of the one run under way, once its MLflow run has started."
    for f in (project / "workspace" / "runs").glob("*/result.json"):
        try: r = json.loads(f.read_text())
        except ValueError: continue
        if r.get("run_id"): return r
    return None


def test_killed_train_is_recorded_as_failed(project, tmp_path):
    tmp = tmp_path / "tmp"; tmp.mkdir()   # the runner's temporary folder: kernels' sockets and reports land here
    env = {**os.environ, "TMPDIR": str(tmp)}
    results = project / "workspace" / "results"; results.mkdir(parents=True)
    (results / "train.json").write_text(json.dumps({"pipeline": "train", "status": "succeeded", "run_id": "earlier",
                                                     "finished": "2026-11-30T10:00:00+00:00"}))   # a success from yesterday
    c = client(project); c.create_registered_model("breast_cancer"); c.create_model_version("breast_cancer", (tmp_path / "m").as_uri())
    p = subprocess.Popen([BIN / "mlops-nb", "run", "train", "-p", "estimator", "logistic_regression"], cwd=project, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        during = wait_for(lambda: run_file(project))   # the MLflow run is open: the pipeline is mid-way
        handoff = latest_result(project)
        assert handoff["status"] == "running" and handoff["pid"] == p.pid and handoff["last_success"]["run_id"] == "earlier"
        p.send_signal(signal.SIGKILL); p.wait()
    finally:
        if p.poll() is None: p.kill(); p.wait()
    kernel = handoff["kernel_pid"]   # dies with its runner
    wait_for(lambda: not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE, timeout=15)
    st = mlops_nb("status", cwd=project, env=env)
    assert st.returncode == 0, st.stderr
    line = next(l for l in st.stdout.splitlines() if l.strip().startswith("train"))
    assert "failed" in line and f"pid {p.pid}" in line and "is gone" in line, st.stdout
    assert "last success 2026-11-30T10:00:00+00:00, run earlier" in st.stdout, st.stdout
    res = latest_result(project)
    assert res["status"] == "failed" and res["run_id"] == during["run_id"] and res["last_success"]["run_id"] == "earlier"
    assert json.loads(Path(res["result_file"]).read_text())["status"] == "failed"
    assert client(project).get_run(during["run_id"]).info.status == "FAILED"
    run_dir = Path(res["result_file"]).parent   # the notebook as far as it ran, whole; no partial file; no temp folder
    assert sorted(f.name for f in run_dir.iterdir() if f.name.startswith(".")) == []
    nb = run_dir / "train.ipynb"
    assert not nb.exists() or json.loads(nb.read_text())["cells"]
    assert list(tmp.iterdir()) == []
    assert versions(project) == [1]   # nothing registered by the killed run


def test_plain_papermill_refuses_unknown_and_out_of_range_parameters(project, tmp_path, use_store):
    for args, message in [(["-p", "n_estimators", "10"], "unknown parameter 'n_estimators' for this pipeline; accepted: data, query"),
                          (["-p", "test_size", "2"], "setting 'test_size' (parameter) must be between 0 and 1")]:
        p = run([BIN / "papermill", pipeline_path("train"), tmp_path / "out.ipynb", *args], cwd=project)
        assert p.returncode != 0 and message in p.stderr, p.stderr
    assert versions(project) == []
    assert not (project / "workspace" / "mlflow.db").exists() or client(project).search_runs(
        [e.experiment_id for e in client(project).search_experiments()]) == []   # refused before any MLflow run


def test_unknown_estimator_refused_before_the_run(project):
    p = mlops_nb("run", "train", "-p", "estimator", "banana", cwd=project)
    c = client(project)
    assert c.search_runs([e.experiment_id for e in c.search_experiments()]) == []   # no MLflow run was started
    assert p.returncode == 1 and "unknown estimator 'banana'; use one of dummy, hist_gradient_boosting" in p.stderr, p.stderr


def test_artifacts_in_the_workspace_whatever_the_folder(project, tmp_path):
    elsewhere = project / "jobs"; elsewhere.mkdir()   # cron runs the command from some other folder
    tmp = tmp_path / "tmp"; tmp.mkdir()
    db = project / "workspace" / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "MLOPS_NB_SETTINGS": str(project / "settings.ini"), "TMPDIR": str(tmp)}
    p = mlops_nb("run", "train", "-p", "estimator", "logistic_regression", "-p", "data", "../data/breast_cancer.csv",
                 cwd=elsewhere, env=env)
    assert p.returncode == 0, p.stderr
    assert list(elsewhere.iterdir()) == []   # no ./mlruns where the command ran
    arts = project / "workspace" / "artifacts" / "breast_cancer"
    res = latest_result(project)
    c = client(project)
    mv = c.get_model_version("breast_cancer", res["model_version"])
    assert mv.tags["data_source"] == str(project / "data" / "breast_cancer.csv")   # absolute, as read
    assert c.get_run(res["run_id"]).info.artifact_uri.startswith(arts.as_uri())
    assert any(arts.rglob("MLmodel")) and any(arts.rglob("train.ipynb"))
    st = mlops_nb("status", cwd=elsewhere, env=env)
    assert f"artifacts (models, notebooks, reports) in {arts.as_uri()}" in st.stdout, st.stdout
    assert list(tmp.iterdir()) == []   # no kernel folder, no quality.html folder left


@pytest.fixture
def small_disk(tmp_path):
    "A 64 KiB tmpfs (needs root to mount; skipped elsewhere, where 10_pipeline's simulated ENOSPC example still runs)."
    d = tmp_path / "disk"; d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield d
    subprocess.run(["umount", str(d)], check=True)


def test_full_disk_keeps_the_last_good_files(small_disk):
    from mlops_nb.config import Settings
    from mlops_nb.pipeline import read_result, record_attempt, settle_notebook
    s = Settings(workspace=str(small_disk / "ws"))
    record_attempt("train", s, {"status": "succeeded", "run_id": "good"})
    with open(small_disk / "filler", "wb", buffering=0) as f:   # fill the disk to its last block
        try:
            while True: f.write(b"x" * 1024)
        except OSError: pass
    with pytest.raises(OSError, match="No space left"):
        record_attempt("train", s, {"status": "failed", "run_id": "next", "error": "x" * 100_000})
    assert read_result("train", s)["run_id"] == "good"   # the old hand-off, whole
    assert sorted(p.name for p in (small_disk / "ws" / "results").iterdir()) == ["train.json"]   # no temporary left
    (small_disk / "filler").unlink()
    partial = small_disk / ".train.ipynb.partial"   # what a full disk leaves of papermill's write: cut short
    with open(partial, "w") as f: f.write('{"cells": [')
    settle_notebook(partial, small_disk / "train.ipynb")
    assert not partial.exists() and not (small_disk / "train.ipynb").exists()
