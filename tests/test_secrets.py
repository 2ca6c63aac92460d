"""No password in any executed notebook or artifact: real `mlops-nb run` processes given PostgreSQL URLs with passwords,
failing (nothing listens) and succeeding (a throw-away PostgreSQL with `trust` authentication, which accepts and ignores
the password), then every file of the project (the workspace, the MLflow SQLite store, its artifacts) searched for them."""
from pathlib import Path

import pytest

from conftest import mlops_nb
from pg import free_port, postgres  # noqa: F401  (the session's PostgreSQL server fixture)


def _files_holding(root: Path, secrets) -> dict:
    "Every file under `root` (text or binary, the SQLite store included) that holds one of `secrets`, with the ones it holds."
    found = {}
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits = [s for s in secrets if s.encode() in data]
            if hits: found[str(p.relative_to(root))] = hits
    return found


def test_no_secret_in_notebooks_or_artifacts(project, postgres):
    closed = f"127.0.0.1:{free_port()}"   # nothing listens here: the connection fails
    secrets = dict(train_fail="S3cretTrainFail", tune_fail="S3cretTuneFail", train_ok="S3cretTrainOk", tune_ok="S3cretTuneOk")
    consoles = []

    # failing runs: the connection is refused, the notebook is kept, the error is printed
    p = mlops_nb("run", "train", "-p", "data", f"postgresql://user:{secrets['train_fail']}@{closed}/db", "-p", "query", "select 1",
                 cwd=project)
    assert p.returncode != 0 and "executed notebook kept at" in p.stderr, p.stderr
    consoles.append(p.stdout + p.stderr)
    p = mlops_nb("run", "tune", "-p", "estimator", "logistic_regression", "-p", "n_trials", "2",
                 "-p", "storage", f"postgresql://user:{secrets['tune_fail']}@{closed}/optuna", cwd=project)
    assert p.returncode != 0 and "executed notebook kept at" in p.stderr, p.stderr
    consoles.append(p.stdout + p.stderr)

    # succeeding runs: the training data read from PostgreSQL, the study kept there; trust authentication ignores the password
    import pandas as pd, sqlalchemy as sa
    src = postgres.create_database("source", driver="psycopg2")
    eng = sa.create_engine(src)
    pd.read_csv(project / "data" / "breast_cancer.csv").to_sql("cases", eng, index=False)
    eng.dispose()
    with_pw = lambda url, pw: url.replace("postgres@", f"postgres:{pw}@", 1)
    p = mlops_nb("run", "train", "-p", "estimator", "logistic_regression", "-p", "data", with_pw(src, secrets["train_ok"]),
                 "-p", "query", "SELECT * FROM cases", cwd=project)
    assert p.returncode == 0, p.stderr
    consoles.append(p.stdout + p.stderr)
    study = postgres.create_database("optuna")
    p = mlops_nb("run", "tune", "-p", "estimator", "logistic_regression", "-p", "n_trials", "2",
                 "-p", "storage", with_pw(study, secrets["tune_ok"]), cwd=project)
    assert p.returncode == 0, p.stderr
    consoles.append(p.stdout + p.stderr)

    ws = project / "workspace"
    kept, logged = sorted(ws.glob("runs/*/*.ipynb")), sorted(ws.glob("artifacts/**/notebook/*.ipynb"))
    assert len(kept) == 4 and len(logged) == 3, (kept, logged)   # every run kept; logged to MLflow when it had a run
    notebooks = kept + logged                                   # (the failing tune stops before its MLflow run starts)
    assert (ws / "mlflow.db").is_file()
    assert _files_holding(project, secrets.values()) == {}
    assert not [s for s in secrets.values() for c in consoles if s in c]
    # the parameters are still there for a reader, redacted
    texts = [n.read_text() for n in notebooks]
    assert any("postgresql+psycopg2://postgres:***@" in t and 'environ[' in t for t in texts)
