"""Data validation end to end: SQL through the train pipeline, schemas logged and enforced, bad batches refused."""
import os, sqlite3

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import client, latest_result, mlops_nb, versions
from mlops_nb.checks import check_data, infer_schema, load_schema, save_schema, schema_hash, validate_batch
from mlops_nb.data import DataError, load_data
from mlops_nb.train import features_target


def refused(p, project, *messages, n_versions=0):
    "The run failed with a one-line data error containing `messages`, and no model was registered."
    assert p.returncode == 1, p.stderr
    for m in messages: assert m in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    res = latest_result(project)
    assert res["status"] == "failed"
    assert client(project).get_run(res["run_id"]).info.status == "FAILED"
    assert len(versions(project)) == n_versions


def test_sql_train_logs_schema_and_serves_raw_records_alike(project, use_store):
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    df["site"] = np.where(np.arange(len(df)) % 3 == 0, "north", "south")      # a categorical and an int column
    df["visits"] = np.arange(len(df)) % 7
    df["seen"] = pd.date_range("2025-01-01", periods=len(df), freq="13h").strftime("%Y-%m-%dT%H:%M:%S")   # ISO text in SQL
    with sqlite3.connect(project / "data" / "bc.db") as con: df.to_sql("patients", con, index=False)
    url = f"sqlite:///{project / 'data' / 'bc.db'}"
    p = mlops_nb("run", "train", "-p", "data", url, "-p", "query", "SELECT * FROM patients",
                 "-p", "estimator", "logistic_regression", cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project)
    c = client(project)
    r = c.get_run(res["run_id"])
    assert r.data.tags["data_source"] == url and r.data.tags["data_rows"] == str(len(df))
    files = {a.path for d in ("schema", "data") for a in c.list_artifacts(res["run_id"], d)}
    assert files == {"schema/schema.yaml", "data/quality.html"}
    schema = load_schema(mlflow.artifacts.download_artifacts(run_id=res["run_id"], artifact_path="schema/schema.yaml"))
    assert r.data.tags["data_schema_hash"] == schema_hash(schema)
    assert c.get_model_version("breast_cancer", "1").tags["data_schema_hash"] == schema_hash(schema)
    assert schema["columns"]["site"]["categories"] == ["north", "south"] and schema["target"]["classes"] == ["benign", "malignant"]
    assert schema["columns"]["seen"]["type"] == "datetime"
    assert (project / "workspace" / "schemas" / "breast_cancer.yaml").exists()
    # parity: the logged model (pyfunc, raw records) predicts exactly what the fitted pipeline does in memory
    uri = f"models:/breast_cancer/{res['model_version']}"
    raw = load_data(url, "SELECT * FROM patients")
    X, _ = features_target(check_data(raw, schema, quiet=True).data, "diagnosis")
    in_memory = mlflow.sklearn.load_model(uri)
    expected = in_memory.predict(X).tolist()
    assert "seen_day_of_week" in in_memory[:-1].get_feature_names_out()      # the date parts are made inside the model
    # the frame as read from the database scores as it is: the signature declares its columns as read (`visits` long,
    # `seen` ISO text: string), and the model makes the date parts itself
    assert mlflow.pyfunc.load_model(uri).predict(raw.drop(columns="diagnosis")).tolist() == expected
    # the service's reading of JSON records (types from the signature, categories from the model) gives the same
    from mlops_nb.serve import to_frame, schema_from_signature, categories_from_model
    sch = categories_from_model(in_memory, schema_from_signature(mlflow.models.get_model_info(uri).signature.inputs.to_dict()))
    body = {"dataframe_records": raw.drop(columns="diagnosis").to_dict(orient="records")}
    frame, warns, _, _ = to_frame(body, sch, max_rows=len(raw))
    assert in_memory.predict(frame).tolist() == expected and warns == []


def test_batch_breaking_champion_schema_is_refused(project):
    assert mlops_nb("run", "train", "-p", "estimator", "dummy", cwd=project).returncode == 0
    client(project).set_registered_model_alias("breast_cancer", "champion", "1")   # whatever the gate decided
    df = pd.read_csv(project / "data" / "breast_cancer.csv").drop(columns="mean area")
    df.to_csv(project / "data" / "new.csv", index=False)
    p = mlops_nb("run", "train", "-p", "data", "data/new.csv", cwd=project)
    refused(p, project, "DataValidationError", "column 'mean area': required column is missing", n_versions=1)
    assert "models:/breast_cancer@champion" in open(latest_result(project)["executed_notebook"]).read()   # the schema's origin
    # the quality report is logged for the refused batch
    assert [a.path for a in client(project).list_artifacts(latest_result(project)["run_id"], "data")] == ["data/quality.html"]


def test_strings_where_numbers_expected_against_schema_setting(project):
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    save_schema(infer_schema(df, "diagnosis", "classification"), project / "schema.yaml")
    df["mean radius"] = df["mean radius"].astype(str)
    df.loc[[3, 7], "mean radius"] = ["abc", "twelve"]
    df.to_csv(project / "data" / "new.csv", index=False)
    p = mlops_nb("run", "train", "-p", "data", "data/new.csv", "-p", "schema", "schema.yaml", cwd=project)
    refused(p, project, "column 'mean radius': 2 rows: values that are not float (rows 3: 'abc', 7: 'twelve')")


@pytest.mark.parametrize("content, message", [
    ("one_row", "has 1 rows; at least 10 are needed"),
    ("all_null", "column 'mean radius' has no values at all"),
    (b"a,b\n1,2\n3,4,5\n", "is not well-formed CSV"),
    ("latin", "is not utf-8 text (byte 0xe9 at offset"),
    ("dup", "duplicated column names: 'mean radius' heads columns 1, 2. Give each column its own name"),
])
def test_bad_files_through_the_cli(project, content, message):
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    f = project / "data" / "bad.csv"
    if content == "one_row": df.head(1).to_csv(f, index=False)
    elif content == "all_null": df.assign(**{"mean radius": np.nan}).to_csv(f, index=False)
    elif content == "latin": f.write_bytes(df.head(20).assign(diagnosis="b\xe9nin").to_csv(index=False).encode("latin-1"))
    elif content == "dup": df.rename(columns={"mean texture": "mean radius"}).to_csv(f, index=False)   # pandas reads 'mean radius.1'
    else: f.write_bytes(content)
    refused(mlops_nb("run", "train", "-p", "data", "data/bad.csv", cwd=project), project, message)


def test_bad_input_messages(tmp_path):
    "The other bad inputs, through the same functions the pipeline calls."
    ref = pd.DataFrame({"x": np.linspace(0, 1, 50), "c": ["a", "b"] * 25, "y": [0, 1] * 25})
    schema = infer_schema(ref, "y", "classification")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("x,c,y\n")
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="is empty"): load_data(str(tmp_path / "empty.csv"))
    with pytest.raises(DataError, match="has no rows"): load_data(str(tmp_path / "header.csv"))
    with pytest.raises(DataError, match="use CSV"): load_data(str(tmp_path / "data.xlsx"))
    with pytest.raises(DataError, match="has 0 rows"): check_data(ref.head(0), schema, quiet=True)
    with pytest.raises(DataError, match="column 'x': required column is missing"): check_data(ref.drop(columns="x"), schema, quiet=True)
    with pytest.raises(DataError, match=r"target classes the model has never seen \(rows 1: 2"):
        check_data(ref.assign(y=[0, 2] * 25), schema, quiet=True)
    v = validate_batch(ref.assign(c=["a", "new"] * 25), schema)
    assert v.ok and "new categories ['new']" in v.summary()
