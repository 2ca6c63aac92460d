"""Monitoring and continuous training end to end: real papermill runs, a real uvicorn service, real processes killed."""
import json, os, signal, subprocess, time

import pytest

from conftest import BIN, client, latest_result, mlops_nb


def champion(project, name="breast_cancer"):
    from mlflow.exceptions import MlflowException
    try: return str(client(project).get_model_version_by_alias(name, "champion").version)
    except MlflowException: return None


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}
    return e | {k: str(v) for k, v in extra.items()}


def make_champion(project, version="1"):
    "The alias set directly: the gate has its own tests, these are about what comes after it."
    client(project).set_registered_model_alias("breast_cancer", "champion", version)


def test_ticks_idle_rejected_concurrent_killed(project):
    assert mlops_nb("run", "train", cwd=project).returncode == 0
    make_champion(project)

    # nothing fires: no request, no schedule, same data, no prediction log to monitor yet
    p = mlops_nb("ct", cwd=project)
    assert p.returncode == 0 and "nothing to do" in p.stdout, p.stdout + p.stderr
    assert latest_result(project, "ct")["status"] == "idle"

    # on demand, a worse model: trained and validated, not promoted, and the tick says so
    p = mlops_nb("ct", "--now", "--reason", "test", cwd=project, env=env(MLOPS_NB_ESTIMATOR="dummy"))
    assert p.returncode == 0, p.stderr
    assert "[FIRED] demand: requested: test" in p.stdout and "version 2 was NOT promoted; the champion is still 1" in p.stdout
    assert champion(project) == "1" and latest_result(project, "ct")["status"] == "rejected"

    # two ticks at once: one trains, the other exits at once saying a tick is running
    procs = [subprocess.Popen([BIN / "mlops-nb", "ct", "--now"], cwd=project, env=env(MLOPS_NB_ESTIMATOR="dummy"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    t0 = time.monotonic(); outs = [None, None]
    while None in outs:
        for i, q in enumerate(procs):
            if outs[i] is None and q.poll() is not None: outs[i] = (time.monotonic() - t0, q.returncode, q.stdout.read())
        time.sleep(0.05)
    (t_busy, rc_busy, busy), (t_work, rc_work, work) = sorted(outs, key=lambda o: "already running" not in o[2])
    assert "a tick is already running" in busy and rc_busy == 0 and "retraining" not in busy
    assert "version 3 was NOT promoted" in work and rc_work == 0
    assert t_busy < t_work / 2   # the refused tick did not wait for the training

    # a tick killed mid-training (with its kernel): the next tick recovers the lock; the champion is unchanged
    runs = project / "workspace" / "runs"
    before = set(runs.iterdir())
    q = subprocess.Popen([BIN / "mlops-nb", "ct", "--now"], cwd=project, env=env(), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any("-train-" in r.name for r in set(runs.iterdir()) - before):
        assert time.monotonic() < deadline and q.poll() is None, "the tick did not start training"
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(q.pid, signal.SIGKILL); q.wait()
    lock = json.loads((project / "workspace" / "ct" / "tick.lock").read_text())
    assert lock["pid"] == q.pid                                      # the killed tick's record is still there
    p = mlops_nb("ct", cwd=project)
    assert p.returncode == 0 and f"recovered the lock of a tick that did not finish (pid {q.pid}" in p.stdout, p.stdout
    assert champion(project) == "1"
    assert latest_result(project, "ct")["recovered_lock"]["pid"] == q.pid

    # the data changed and the version trained on it was refused: the next tick does not retrain on the same data again
    import pandas as pd
    data = project / "data" / "breast_cancer.csv"
    pd.read_csv(data).iloc[:-10].to_csv(data, index=False)
    dummy = env(MLOPS_NB_ESTIMATOR="dummy", MLOPS_NB_CT_TRIGGERS="data")
    p = mlops_nb("ct", cwd=project, env=dummy)
    tick = latest_result(project, "ct")
    assert p.returncode == 0 and tick["fired"] == ["data"] and tick["status"] == "rejected", (p.stdout[-2000:], tick)
    p = mlops_nb("ct", cwd=project, env=dummy)
    again = latest_result(project, "ct")
    assert again["status"] == "idle" and again["fired"] == [] and "but the version trained on it was refused" in again["triggers"][0]["reason"], again
    assert champion(project) == "1"


def test_monitor_bad_input(project, use_store):
    import mlflow
    import pandas as pd
    assert mlops_nb("run", "train", cwd=project).returncode == 0
    make_champion(project)

    # a batch with a missing column: named, non-zero exit
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    df.drop(columns=["mean radius"]).to_csv(project / "data" / "missing.csv", index=False)
    p = mlops_nb("run", "monitor", "-p", "current", "data/missing.csv", cwd=project)
    assert p.returncode == 1 and "'mean radius'" in p.stderr and "missing" in p.stderr, p.stderr

    # the training data itself, read 100 rows at a time: every row counted, its labels judged, no drift
    p = mlops_nb("run", "monitor", "-p", "current", "data/breast_cancer.csv", "-p", "chunk_size", "100", cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project, "monitor")
    assert res["rows"] == 569 and res["labels"] == 569 and not res["drift_detected"], res

    # no prediction log yet, then a window with no rows
    p = mlops_nb("run", "monitor", cwd=project)
    assert p.returncode == 1 and "no prediction log at" in p.stderr, p.stderr
    from mlops_nb.predlog import PredictionLog
    log = PredictionLog(f"sqlite:///{project / 'workspace' / 'predictions.db'}")
    X = df.drop(columns=["diagnosis"]).head(50)
    log.log("r1", "breast_cancer", "1", X.values.tolist(), list(X.columns), ["benign"] * 50); log.close()
    p = mlops_nb("run", "monitor", "-p", "monitor_since", "2099-01-01", cwd=project)
    assert p.returncode == 1 and "the monitored period is empty" in p.stderr, p.stderr
    p = mlops_nb("run", "monitor", cwd=project)                       # the 50 logged rows: judged, no error
    assert p.returncode == 0, p.stderr
    assert latest_result(project, "monitor")["rows"] == 50

    # a model logged without reference statistics
    from sklearn.dummy import DummyClassifier
    mlflow.set_experiment("breast_cancer")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(DummyClassifier().fit(X, ["benign"] * 50), name="model", registered_model_name="breast_cancer")
    v = info.registered_model_version
    p = mlops_nb("run", "monitor", "-p", "reference", f"models:/breast_cancer/{v}", cwd=project)
    assert p.returncode == 1 and f"breast_cancer version {v} was logged without reference statistics" in p.stderr, p.stderr
    assert champion(project) == "1"
