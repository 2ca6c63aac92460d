"""Scale-out on real servers: Optuna studies on a throw-away PostgreSQL shared by several `mlops-nb run tune` workers,
a worker killed mid-trial, and the pipelines tracking to a real `mlflow server` whose backend store is PostgreSQL.

PostgreSQL comes from Debian's package (`scripts/dev test` installs it when missing); these tests skip only when it
cannot be had. Every worker is a real `mlops-nb run tune` process (papermill, a real kernel)."""
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import pytest

from conftest import BIN, mlops_nb
from dashboard import optuna_dashboard
from pg import free_port, postgres  # noqa: F401  (the session's PostgreSQL server fixture)


FINISHED = ("COMPLETE", "PRUNED")


def _study(url, name):
    "The study `name` as stored at `url` (read without heartbeats, as an observer)."
    import optuna
    from mlops_nb.data import sa_url
    return optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(sa_url(url)))


def _tune_cmd(*args):
    return [str(BIN / "mlops-nb"), "run", "tune", "-p", "estimator", "logistic_regression", *map(str, args)]


def _results(ws):
    "Every result.json of the tune runs in workspace `ws`."
    return [json.loads(p.read_text()) for p in sorted((ws / "runs").glob("*-tune-*/result.json"))]


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    "A real `mlflow server` process: backend store on PostgreSQL, artifacts proxied to a local folder."
    url = postgres.create_database("mlflow", driver="psycopg2")
    arts, port = tmp_path_factory.mktemp("mlflow-artifacts"), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"   # the GenAI job runner: not used, and it slows start-up
    log = open(arts.parent / "mlflow-server.log", "w")
    p = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", url, "--artifacts-destination", str(arts),
                          "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                         stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                if urllib.request.urlopen(f"{uri}/health", timeout=2).read() == b"OK": break
            except OSError: pass
            assert p.poll() is None, f"mlflow server exited: {Path(log.name).read_text()[-3000:]}"
            assert time.monotonic() - t0 < 180, "mlflow server not ready after 180 s"
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try: p.wait(20)
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL); p.wait()
        log.close()


def test_pipelines_on_mlflow_server_and_two_workers_share_one_study(project, postgres, mlflow_server):
    from mlflow import MlflowClient
    storage = postgres.create_database("optuna_shared")           # plain postgresql://, as a user writes it
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    name = "bc_server"

    # train, tracked and registered on the server
    p = mlops_nb("run", "train", "-p", "model_name", name, "-p", "estimator", "logistic_regression", cwd=project, env=env)
    assert p.returncode == 0, p.stderr
    train = json.loads((project / "workspace" / "results" / "train.json").read_text())

    # two workers ("hosts": each its own workspace for executed notebooks and results) on one study, at the same time
    procs, n = [], 5
    for i in (1, 2):
        wenv = {**env, "MLOPS_NB_WORKSPACE": str(project / f"host{i}")}
        procs.append(subprocess.Popen(_tune_cmd("-p", "model_name", name, "-p", "n_trials", n, "-p", "storage", storage,
                                                "-p", "study_name", "shared"),
                                      cwd=project, env=wenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [q.communicate(timeout=300) for q in procs]
    for q, (_, err) in zip(procs, outs): assert q.returncode == 0, err

    study = _study(storage, "shared")
    assert len(study.trials) == 2 * n and {t.state.name for t in study.trials} <= set(FINISHED)
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 2 * n     # no worker repeated another's trial
    # and optuna-dashboard reads it live; given the driver, as README says: SQLAlchemy 2.1's default for postgresql:// is psycopg 3
    with optuna_dashboard(storage.replace("postgresql://", "postgresql+psycopg2://", 1), project / "dashboard.log") as dash:
        _, detail = dash("shared")
        assert sorted(t["number"] for t in detail["trials"]) == list(range(2 * n))
        assert detail["best_trials"][0]["values"] == [pytest.approx(study.best_value)]
    res = [r for i in (1, 2) for r in _results(project / f"host{i}")]
    assert [r["status"] for r in res] == ["succeeded", "succeeded"]
    assert {r["study_name"] for r in res} == {"shared"} and max(r["n_trials"] for r in res) == 2 * n

    c = MlflowClient(mlflow_server)
    runs = [c.get_run(r["run_id"]) for r in [train, *res]]
    assert [r.info.status for r in runs] == ["FINISHED"] * 3
    # the two tune runs overlapped in time: they really worked at once
    a, b = runs[1].info, runs[2].info
    assert a.start_time < b.end_time and b.start_time < a.end_time
    vs = {int(v.version): v for v in c.search_model_versions(f"name='{name}'")}
    assert sorted(vs) == [1, 2, 3] and vs[1].run_id == train["run_id"]
    assert {vs[2].tags["study_name"], vs[3].tags["study_name"]} == {"shared"}
    assert {vs[2].run_id, vs[3].run_id} == {r["run_id"] for r in res}
    assert str(c.get_model_version_by_alias(name, "challenger").version) in ("2", "3")
    # artifacts go through the server: the trials table and the executed notebook come back
    d = tempfile.mkdtemp()
    t = json.loads(Path(c.download_artifacts(res[0]["run_id"], "optuna/trials.json", d)).read_text())
    assert len(t["data"]) >= n and "state" in t["columns"]
    arts = {x.path for x in c.list_artifacts(train["run_id"])}
    assert any(x.endswith(".ipynb") or x == "notebook" for x in arts), arts


def _kill_tree(pid):
    "SIGKILL a process and all its descendants (the `mlops-nb` process and the kernel running the trials), as a crash would."
    import psutil
    root = psutil.Process(pid)
    procs = root.children(recursive=True) + [root]
    for q in procs:
        try: q.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess: pass
    psutil.wait_procs(procs, timeout=10)


def test_killed_worker_trial_fails_and_a_new_worker_completes_the_study(project, postgres):
    storage = postgres.create_database("optuna_crash")
    # trials of about a second (3 folds of a few hundred trees), so the kill lands inside one
    slow = '{"n_estimators": {"type": "int", "low": 200, "high": 300}, "max_depth": {"type": "int", "low": 2, "high": 8}}'
    args = ["-p", "estimator", "random_forest", "-p", "search_space", slow, "-p", "storage", storage,
            "-p", "study_name", "crash", "-p", "heartbeat", "1"]
    a = subprocess.Popen([str(BIN / "mlops-nb"), "run", "tune", *args, "-p", "n_trials", "100"], cwd=project,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while True:
            assert a.poll() is None, "the first worker ended before it could be killed"
            assert time.monotonic() - t0 < 180, "the first worker finished no 2 trials in 180 s"
            try:
                states = [t.state.name for t in _study(storage, "crash").trials]
                if sum(s in FINISHED for s in states) >= 2 and states[-1] == "RUNNING": break
            except KeyError: pass          # the study does not exist yet
            time.sleep(0.1)
        _kill_tree(a.pid)
    finally:
        if a.poll() is None: _kill_tree(a.pid)

    before = _study(storage, "crash").trials
    running = [t.number for t in before if t.state.name == "RUNNING"]
    done = {t.number: t.value for t in before if t.state.name in FINISHED}
    assert len(running) == 1 and len(done) >= 2, [t.state.name for t in before]   # the kill landed mid-trial
    killed = running[0]

    # a new worker: it fails the silent trial (heartbeat 1 s, grace 2 s), runs it once more, and adds its own trials
    p = mlops_nb("run", "tune", *args, "-p", "n_trials", "2", cwd=project)
    assert p.returncode == 0, p.stderr
    after = {t.number: t for t in _study(storage, "crash").trials}
    assert after[killed].state.name == "FAIL"
    for num, value in done.items():                                 # no completed trial lost
        assert after[num].state.name in FINISHED and after[num].value == value
    retry = [t for t in after.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retry) == 1 and retry[0].state.name in FINISHED and retry[0].params == after[killed].params
    assert len(after) == len(before) + 2 and "RUNNING" not in {t.state.name for t in after.values()}
    res = json.loads((project / "workspace" / "results" / "tune.json").read_text())
    assert res["status"] == "succeeded" and res["n_trials"] == len(after) and res["model_version"]


def test_unanswering_postgres_fails_within_seconds(project):
    "A server that accepts the TCP connection but never answers (a hung host): a clear message, not a hang."
    from conftest import latest_result
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0)); silent.listen()
        t0 = time.monotonic()
        p = mlops_nb("run", "tune", "-p", "storage", f"postgresql://u:secret@127.0.0.1:{silent.getsockname()[1]}/x",
                     cwd=project, timeout=120)
        took = time.monotonic() - t0
    assert p.returncode != 0 and took < 30, took
    assert "SettingsError: parameter storage postgresql://u:***@127.0.0.1:" in p.stderr and "cannot connect" in p.stderr, p.stderr
    assert "secret" not in p.stderr and "Traceback" not in p.stderr
    assert latest_result(project, "tune")["status"] == "failed"
