"""Continuous training as an Airflow DAG: the same pipeline notebooks `mlops-nb ct` runs, one Airflow task each.

For teams that outgrow cron. Every task runs `mlops-nb run PIPELINE` (papermill under the hood, the executed notebook kept
and logged to MLflow), so a task's log, retries and duration are Airflow's, and its results are the pipeline's result
file (`WORKSPACE/results/PIPELINE.json`), read here to pass the trained version on and to decide whether to retrain.

Set-up (on the Airflow workers): `pip install -c constraints.txt mlops-nb`, the project folder with its settings.ini
at PROJECT_DIR, and MLFLOW_TRACKING_URI / MLOPS_NB_PREDICTION_STORE pointing at the shared stores. Copy this file to
the DAGs folder. Tested with the Airflow 2.10 / 3.x `airflow.sdk` task API; it is not run by this repository's tests
(Airflow is not a dependency), only compiled.

    monitor ──► decide ──► train ──► validate
                     └───► (skip: no trigger fired)
"""
import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

try:
    from airflow.sdk import dag, task          # Airflow 3
except ImportError:                            # Airflow 2
    from airflow.decorators import dag, task

PROJECT_DIR = Path(os.environ.get("MLOPS_NB_PROJECT", "/opt/mlops/project"))
MLOPS_NB = os.environ.get("MLOPS_NB_BIN", "mlops-nb")


def run_pipeline(name: str, *params: str) -> dict:
    "Run one pipeline notebook in the project folder; its result file is the task's return value (and XCom)."
    args = [MLOPS_NB, "run", name]
    for p in params: args += ["-p", *p.split("=", 1)]
    subprocess.run(args, cwd=PROJECT_DIR, check=True)
    return json.loads((PROJECT_DIR / "workspace" / "results" / f"{name}.json").read_text())


@dag(schedule=timedelta(hours=1), start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args=dict(retries=1, retry_delay=timedelta(minutes=5)), tags=["mlops_nb"])
def mlops_nb_continuous_training():
    @task
    def monitor() -> dict:
        "Drift and performance of the champion on the prediction log (the monitor pipeline)."
        return run_pipeline("monitor")

    @task.short_circuit
    def decide(verdict: dict) -> bool:
        "Retrain when the data drifted or the model lost performance (the other triggers: `mlops-nb ct`)."
        return bool(verdict.get("drift_detected") or verdict.get("performance_degraded"))

    @task
    def train() -> str:
        "Retrain on the current data, relearning the data schema; returns the new version (a challenger)."
        return str(run_pipeline("train", "schema=infer")["model_version"])

    @task
    def validate(version: str) -> dict:
        "The gate: the new version becomes champion only if every check passes (a failed gate fails this task)."
        return run_pipeline("validate", f"candidate={version}")

    validate(decide(monitor()) >> train())


mlops_nb_continuous_training()
