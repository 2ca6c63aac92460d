"""Continuous training as an Airflow DAG: the same pipeline notebooks `mlops-nb ct` runs, one Airflow task each.

For teams that outgrow cron. Every task runs `mlops-nb run PIPELINE --json` (papermill under the hood, the executed
notebook kept and logged to MLflow), so a task's log, retries and duration are Airflow's, and its return value (XCom)
is the pipeline's result, read from the command's last line: the trained version goes on to validate, the monitor's
verdict decides whether to retrain.

Set-up. Airflow pins its own dependencies, so it lives in an environment of its own, and mlops-nb in another (the
project's): `pip install -r requirements-airflow.txt` (Apache Airflow 3.3, every version pinned, beside this file) for
Airflow; on the workers, the project folder with its settings.ini at MLOPS_NB_PROJECT, its `mlops-nb` command at
MLOPS_NB_BIN (e.g. /opt/mlops/project/.venv/bin/mlops-nb), and MLFLOW_TRACKING_URI / MLOPS_NB_PREDICTION_STORE
pointing at the shared stores. Copy this file to the DAGs folder. Run by tests/test_airflow.py with `airflow dags test`.

    monitor ──► decide ──► train ──► validate
                     └───► (skip: no trigger fired)

Trigger parameters (`airflow dags trigger -c '{"current": "data/batch.parquet"}'`): `current`, a batch to monitor
instead of the prediction log.

Failures: a refused challenger (the validation gate) or settings that cannot work fail their task at once, without
retries (running the gate again gives the same verdict); anything else (a store that did not answer, a killed
worker) is retried as `default_args` say.
"""
import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

try:
    from airflow.sdk import dag, task, get_current_context       # Airflow 3
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:                                              # Airflow 2
    from airflow.decorators import dag, task
    from airflow.exceptions import AirflowFailException
    from airflow.operators.python import get_current_context

PROJECT_DIR = Path(os.environ.get("MLOPS_NB_PROJECT", "/opt/mlops/project"))
MLOPS_NB = os.environ.get("MLOPS_NB_BIN", "mlops-nb")
SETTINGS_ERROR = 2   # mlops-nb's exit code for settings or data the run cannot work with


def run_pipeline(name: str, **params) -> dict:
    "Run one pipeline notebook in the project folder; its result (the command's last line, JSON) is the task's return value."
    args = [MLOPS_NB, "run", name, "--json"]
    for k, v in params.items():
        if v not in (None, ""): args += ["-p", k, str(v)]
    p = subprocess.run(args, cwd=PROJECT_DIR, capture_output=True, text=True)
    print(p.stderr[-20000:], end="")                 # the pipeline's progress and errors, in the task's log
    lines = p.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if p.returncode == 0: return result
    why = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
    gate = name == "validate" and result.get("verdict", {}).get("passed") is False
    if gate or p.returncode == SETTINGS_ERROR:       # the same input gives the same answer: no retry
        raise AirflowFailException(f"mlops-nb run {name}: {why}")
    raise RuntimeError(f"mlops-nb run {name} exited {p.returncode}: {why}")


@dag(schedule=timedelta(hours=1), start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     params={"current": ""}, default_args=dict(retries=1, retry_delay=timedelta(minutes=5)), tags=["mlops_nb"])
def mlops_nb_continuous_training():
    @task
    def monitor() -> dict:
        "Drift and performance of the champion on the prediction log, or on the batch `current` (the monitor pipeline)."
        return run_pipeline("monitor", current=get_current_context()["params"].get("current"))

    @task.short_circuit
    def decide(verdict: dict) -> bool:
        "Retrain when the data drifted or the model lost performance (the other triggers: `mlops-nb ct`)."
        return bool(verdict.get("drift_detected") or verdict.get("performance_degraded"))

    @task
    def train() -> str:
        "Retrain on the current data, relearning the data schema; returns the new version (a challenger)."
        return str(run_pipeline("train", schema="infer")["model_version"])

    @task
    def validate(version: str) -> dict:
        "The gate: the new version becomes champion only if every check passes (a refused version fails this task)."
        return run_pipeline("validate", candidate=version)

    validate(decide(monitor()) >> train())


mlops_nb_continuous_training()
