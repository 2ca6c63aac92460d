"""Data as users export it, through the real train pipeline: another text encoding, a repeated column name, and
database URLs whose password holds a `/` or is given as a query argument (none of it may reach MLflow or a report)."""
import html, sqlite3

import mlflow
import pandas as pd

from conftest import client, latest_result, mlops_nb, versions
from mlops_nb.data import fingerprint


def _latin1_export(project):
    "The demo data as a spreadsheet's Latin-1 'CSV (Windows)' export: accented class names."
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    df["diagnosis"] = df["diagnosis"].map({"benign": "bénin", "malignant": "malin"})
    f = project / "data" / "latin1.csv"
    f.write_bytes(df.to_csv(index=False).encode("latin-1"))
    return f


def test_latin1_csv_is_read_with_the_encoding_parameter(project, use_store):
    f = _latin1_export(project)
    # as UTF-8 (the default), refused: the message points at the first é in the file, and says what to do
    p = mlops_nb("run", "train", "-p", "data", "data/latin1.csv", "-p", "estimator", "dummy", cwd=project)
    raw = f.read_bytes()
    at = raw.index(b"\xe9")
    line = raw[:at].count(b"\n") + 1
    assert p.returncode == 1, p.stderr
    assert f"is not utf-8 text (byte 0xe9 at offset {at}, line {line}): give its encoding with the `encoding` parameter" in p.stderr
    assert "Traceback" not in p.stderr and versions(project) == []
    # named, it is read as written: the classes keep their accents, the fingerprint is of the data as read
    p = mlops_nb("run", "train", "-p", "data", "data/latin1.csv", "-p", "encoding", "latin-1", "-p", "estimator", "dummy", cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project)
    mv = client(project).get_model_version("breast_cancer", res["model_version"])
    assert mv.tags["data_fingerprint"] == fingerprint(pd.read_csv(f, encoding="latin-1"))
    X = pd.read_csv(f, encoding="latin-1").drop(columns="diagnosis").head(5)
    assert set(mlflow.pyfunc.load_model(f"models:/breast_cancer/{res['model_version']}").predict(X)) <= {"bénin", "malin"}


def test_unknown_encoding_is_refused_before_any_work(project):
    p = mlops_nb("run", "train", "-p", "encoding", "latin-9x", cwd=project)
    assert p.returncode == 2
    assert p.stderr.startswith("error: setting 'encoding' (parameter): unknown encoding 'latin-9x'; use a Python codec name")


def test_duplicated_column_name_is_named(project):
    df = pd.read_csv(project / "data" / "breast_cancer.csv").rename(columns={"mean area": "mean radius"})
    df.to_csv(project / "data" / "dup.csv", index=False)   # pandas would read the repeat as 'mean radius.1'
    p = mlops_nb("run", "train", "-p", "data", "data/dup.csv", cwd=project)
    assert p.returncode == 1, p.stderr
    lines = [l for l in p.stderr.splitlines() if "DataError" in l]
    assert len(lines) == 1 and "duplicated column names: 'mean radius' heads columns 1, 4. Give each column its own name" in lines[0], p.stderr
    assert "missing" not in p.stderr and "Traceback" not in p.stderr
    assert latest_result(project)["status"] == "failed" and versions(project) == []


def _leaks(project, secrets, p):
    "Where any of `secrets` appears: the command's output, the result, the MLflow store, its artifacts (executed notebooks aside)."
    ws = project / "workspace"
    places = {"console": p.stdout + p.stderr}
    places |= {str(f.relative_to(ws)): f.read_bytes().decode("utf-8", "replace") for f in (ws / "results").glob("*.json")}
    places["mlflow.db"] = (ws / "mlflow.db").read_bytes().decode("utf-8", "replace")
    places |= {str(f.relative_to(ws)): f.read_bytes().decode("utf-8", "replace") for f in (ws / "artifacts").rglob("*")
               if f.is_file() and f.suffix != ".ipynb"}   # the executed notebook is issue 18 item 7a's
    return sorted(where for where, text in places.items() for s in secrets if s in text)


def test_secrets_in_sql_urls_reach_no_param_tag_or_report(project, use_store):
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    with sqlite3.connect(project / "data" / "bc.db") as con: df.to_sql("patients", con, index=False)
    # SQLAlchemy parses query arguments for SQLite too (and SQLite ignores these): a real run reads the real file
    url = f"sqlite:///{project / 'data' / 'bc.db'}?password=Slash/Secret&api_key=k3yK3y"
    p = mlops_nb("run", "train", "-p", "data", url, "-p", "query", "SELECT * FROM patients", "-p", "estimator", "dummy", cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project)
    c = client(project)
    r = c.get_run(res["run_id"])
    shown = f"sqlite:///{project / 'data' / 'bc.db'}?password=***&api_key=***"
    assert r.data.params["data"] == shown and r.data.tags["data_source"] == shown
    assert c.get_model_version("breast_cancer", res["model_version"]).tags["data_source"] == shown
    page = open(mlflow.artifacts.download_artifacts(run_id=res["run_id"], artifact_path="data/quality.html")).read()
    assert html.escape(shown) in page
    assert _leaks(project, ["Slash/Secret", "Slash%2FSecret", "k3yK3y"], p) == []
    # a password with a / in the URL's user part: the run fails (no server), and still shows it nowhere
    pg = "postgresql://u:Slash/Secret@127.0.0.1:1/db"
    p = mlops_nb("run", "train", "-p", "data", pg, "-p", "query", "SELECT 1", cwd=project)
    assert p.returncode == 1 and "DataError" in p.stderr and "postgresql://u:***@127.0.0.1:1/db" in p.stderr, p.stderr
    assert c.get_run(latest_result(project)["run_id"]).data.params["data"] == "postgresql://u:***@127.0.0.1:1/db"
    assert _leaks(project, ["Slash/Secret", "Slash%2FSecret", "k3yK3y"], p) == []
