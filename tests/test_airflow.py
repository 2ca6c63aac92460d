"""The Airflow DAG of examples/airflow, run for real: Apache Airflow 3.3 in an environment of its own (pinned in
examples/airflow/requirements-airflow.txt; made once and cached under ~/.cache/mlops-nb), `airflow dags test` with a
standalone SQLite metadata database, every task a real `mlops-nb run ... --json` (papermill, MLflow on SQLite) in a
demo project.

Three runs on one project: a batch like the training data (no trigger: train and validate skipped, champion kept), a
drifted batch (monitor, decide, train, validate in that order: the champion moves), and a drifted batch with a dummy
estimator (the gate refuses it: validate fails at once, without a retry, and the champion stays)."""
import hashlib, json, os, shutil, sqlite3, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import BIN, client, mlops_nb, run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
REQS = ROOT / "examples" / "airflow" / "requirements-airflow.txt"
DAG_ID = "mlops_nb_continuous_training"


@pytest.fixture(scope="module")
def airflow_bin():
    "The `airflow` command of a venv made from the pinned requirements (cached: made again only when they change)."
    key = hashlib.sha256(REQS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = Path(os.environ.get("MLOPS_NB_CACHE", Path.home() / ".cache" / "mlops-nb")) / f"airflow-{key}"
    done = venv / ".installed"                                    # written last: a half-made venv is made again
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        assert run([BIN / "uv", "venv", "-q", "--python", sys.executable, venv], ROOT).returncode == 0
        # --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set, each airflow command would compile Airflow again (6 s, not 3)
        r = run([BIN / "uv", "pip", "install", "-q", "--compile-bytecode", "--python", venv / "bin" / "python", "-r", REQS], ROOT, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        done.write_text(REQS.read_text())
    return venv / "bin" / "airflow"


def _states(db: Path) -> list[tuple]:
    "(task_id, state, try_number) of the one DAG run in Airflow's metadata database, in the order the tasks started."
    with sqlite3.connect(db) as c:
        (run_id, state), = c.execute("SELECT run_id, state FROM dag_run WHERE dag_id=?", (DAG_ID,)).fetchall()
        rows = c.execute("SELECT task_id, state, try_number FROM task_instance WHERE dag_id=? AND run_id=? "
                         "ORDER BY start_date IS NULL, start_date, task_id", (DAG_ID, run_id)).fetchall()
    return state, rows


def test_dag_runs_in_airflow(airflow_bin, project, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_", "AIRFLOW"))}
    env |= {"OMP_NUM_THREADS": "1", "MLOPS_NB_ESTIMATOR": "logistic_regression"}
    for p in ("train", "validate"):                               # champion version 1
        r = mlops_nb("run", p, cwd=project, env=env); assert r.returncode == 0, r.stderr[-2000:]
    data = pd.read_csv(project / "data" / "breast_cancer.csv").drop(columns="diagnosis")
    data.sample(200, random_state=0).to_csv(project / "like_training.csv", index=False)
    drifted = data.sample(200, random_state=1)
    drifted[drifted.columns[:15]] *= 1.6                          # half the features shifted
    drifted.to_csv(project / "drifted.csv", index=False)

    dags = tmp_path / "dags"; dags.mkdir()
    shutil.copy(ROOT / "examples" / "airflow" / "mlops_nb_ct.py", dags)
    template = tmp_path / "airflow-template"; template.mkdir()
    base = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "MLOPS_NB_PROJECT": str(project), "MLOPS_NB_BIN": str(BIN / "mlops-nb")}
    r = run([airflow_bin, "db", "migrate"], tmp_path, {**base, "AIRFLOW_HOME": str(template)}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    def dag_run(name, current, **extra):
        "One `airflow dags test` with its own copy of the migrated database; returns (exit code, run state, task states)."
        home = tmp_path / name; (home / "config").mkdir(parents=True)
        shutil.copy(template / "airflow.db", home)
        # test only: `dags test` waits out retry_delay (5 min in the DAG); a retry here happens at once, and is counted
        (home / "config" / "airflow_local_settings.py").write_text(
            "from datetime import timedelta\ndef task_policy(task):\n    task.retry_delay = timedelta(0)\n")
        r = run([airflow_bin, "dags", "test", DAG_ID, "-c", json.dumps({"current": str(project / current)})], tmp_path,
                {**base, "AIRFLOW_HOME": str(home), **extra}, timeout=600)
        return (r.returncode, *_states(home / "airflow.db"), r)

    champion = lambda: str(client(project).get_model_version_by_alias("breast_cancer", "champion").version)

    rc, state, tasks, r = dag_run("no-trigger", "like_training.csv")
    assert (rc, state) == (0, "success"), r.stdout[-3000:]
    assert tasks[:2] == [("monitor", "success", 1), ("decide", "success", 1)], tasks
    assert sorted(tasks[2:]) == [("train", "skipped", 0), ("validate", "skipped", 0)], tasks
    assert champion() == "1"

    rc, state, tasks, r = dag_run("trigger", "drifted.csv")
    assert (rc, state) == (0, "success"), r.stdout[-3000:]
    assert tasks == [("monitor", "success", 1), ("decide", "success", 1), ("train", "success", 1), ("validate", "success", 1)], tasks
    assert champion() == "2"

    rc, state, tasks, r = dag_run("refused", "drifted.csv", MLOPS_NB_ESTIMATOR="dummy")
    assert (rc, state) == (1, "failed"), r.stdout[-3000:]
    assert tasks == [("monitor", "success", 1), ("decide", "success", 1), ("train", "success", 1), ("validate", "failed", 1)], tasks
    assert "was not promoted" in r.stdout + r.stderr                # the gate's reason, in the task's log
    assert champion() == "2"
    assert client(project).get_model_version("breast_cancer", "3").tags["verdict"] == "failed"
