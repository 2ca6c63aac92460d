"""The batch-scoring pipeline: chunked reads of CSV and SQL, predictions with the model version, a bad chunk refused.

Real papermill runs through `mlops-nb run score`. Training and validation (so a champion exists) run once per module."""
import math, os

import mlflow
import pandas as pd
import pytest

from conftest import latest_result, mlops_nb


ROWS = 569   # rows of the demo data (breast cancer)


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    "A demo project (as the `project` fixture makes it) whose version 1 of breast_cancer is the champion; the tests run inside it."
    from mlops_nb.cli import make_demo_project
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith(("MLOPS_NB_", "MLFLOW_")): mp.delenv(k)
        p = make_demo_project(tmp_path_factory.mktemp("score") / "proj")
        mp.chdir(p)
        r = mlops_nb("run", "train", "-p", "estimator", "logistic_regression", cwd=p)
        assert r.returncode == 0, r.stderr
        r = mlops_nb("run", "validate", cwd=p)
        assert r.returncode == 0, r.stderr
        yield p


@pytest.fixture(scope="module")
def model_v1(champion):
    "Version 1, loaded in this process from the project's store."
    uri = f"sqlite:///{champion / 'workspace' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
    try: yield mlflow.sklearn.load_model("models:/breast_cancer/1")
    finally: mlflow.set_tracking_uri(None); mlflow.set_registry_uri(None)


def expected(model, df):
    from mlops_nb.train import features_target
    X, _ = features_target(df, "diagnosis")
    return model.predict(X), model.predict_proba(X).max(axis=1)


def test_score_csv_in_chunks_to_parquet(champion, model_v1):
    out = champion / "out" / "pred.parquet"
    r = mlops_nb("run", "score", "-p", "chunk_size", "100", "-p", "output", out, cwd=champion)
    assert r.returncode == 0, r.stderr
    res = latest_result(champion, "score")
    assert res["status"] == "succeeded"
    assert res["rows"] == ROWS and res["chunks"] == math.ceil(ROWS / 100) == 6
    assert res["model_name"] == "breast_cancer" and res["model_version"] == "1" and res["output"] == str(out)
    got = pd.read_parquet(out)
    assert len(got) == ROWS and list(got["row"]) == list(range(ROWS))
    assert {"row", "prediction", "probability", "model_name", "model_version"} <= set(got.columns)
    assert (got["model_version"] == "1").all() and (got["model_name"] == "breast_cancer").all()
    pred, proba = expected(model_v1, pd.read_csv(champion / "data" / "breast_cancer.csv"))
    assert list(got["prediction"]) == list(pred)
    assert got["probability"].to_numpy() == pytest.approx(proba)
    assert not [f for f in os.listdir(out.parent) if f != out.name]        # no temporary file left behind
    run = mlflow.MlflowClient(f"sqlite:///{champion / 'workspace' / 'mlflow.db'}").get_run(res["run_id"])
    assert run.data.metrics["rows"] == ROWS and run.data.metrics["chunks"] == 6 and "seconds" in run.data.metrics
    assert run.data.params["model_version"] == "1"


def test_score_sql_source_to_csv(champion, model_v1):
    import sqlalchemy as sa
    df = pd.read_csv(champion / "data" / "breast_cancer.csv")
    df.insert(0, "id", range(1000, 1000 + ROWS))
    db = champion / "data" / "batch.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    with eng.begin() as con: df.to_sql("patients", con, index=False)
    eng.dispose()
    out = champion / "out" / "pred.csv"
    r = mlops_nb("run", "score", "-p", "data", f"sqlite:///{db}", "-p", "query", "SELECT * FROM patients ORDER BY id",
                 "-p", "chunk_size", "250", "-p", "output", out, cwd=champion)
    assert r.returncode == 0, r.stderr
    res = latest_result(champion, "score")
    assert res["rows"] == ROWS and res["chunks"] == 3 and res["model_version"] == "1"
    got = pd.read_csv(out, dtype={"model_version": str})
    assert len(got) == ROWS and list(got["row"]) == list(range(ROWS))        # one header, every row once
    assert list(got["id"]) == list(df["id"])
    assert (got["model_version"] == "1").all()
    pred, _ = expected(model_v1, df.drop(columns="id"))
    assert list(got["prediction"]) == list(pred)


def test_bad_chunk_fails_and_leaves_no_output(champion):
    df = pd.read_csv(champion / "data" / "breast_cancer.csv")
    df["mean radius"] = df["mean radius"].astype(object)
    df.loc[250:260, "mean radius"] = "oops"   # (not "n/a": read_csv takes that for a missing value)
    bad = champion / "data" / "bad.csv"
    df.to_csv(bad, index=False)
    out = champion / "out" / "bad.parquet"
    r = mlops_nb("run", "score", "-p", "data", bad, "-p", "chunk_size", "100", "-p", "output", out, cwd=champion)
    assert r.returncode == 1
    err = r.stderr
    assert "'mean radius'" in err and "chunk 3" in err and "rows 200-299" in err and "250: 'oops'" in err and "not float" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [f for f in os.listdir(out.parent) if f.startswith(f".{out.name}")]   # nor its temporary file
    res = latest_result(champion, "score")
    assert res["status"] == "failed" and "chunk 3" in res["error"]


def test_later_season_out_of_range_is_drift_unless_a_schema_blocks(champion, model_v1, tmp_path):
    "Issue 20: values beyond the training range are counted and warned when scoring; a `schema` file makes them errors."
    from mlops_nb.checks import DataValidationError
    from mlops_nb.data import read_chunks
    from mlops_nb.score import load_scoring_model, score_batch
    df = pd.read_csv(champion / "data" / "breast_cancer.csv")
    df.loc[:9, "mean radius"] = df["mean radius"].max() * 3   # a later season: ten rows far beyond the range
    later = tmp_path / "later.csv"; df.to_csv(later, index=False)
    sm = load_scoring_model("models:/breast_cancer/1", mlflow.get_tracking_uri())
    res = score_batch(read_chunks(str(later), None, 200)[1], None, sm, tmp_path / "p.parquet", "parquet", "later.csv")
    assert res["rows"] == ROWS and res["out_of_range"] == {"mean radius": 10}
    assert any("'mean radius'" in w and "outside the allowed range" in w and "drift" in w for w in res["warnings"])
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == ROWS
    schema = champion / "workspace" / "schemas" / "breast_cancer.yaml"   # the file training wrote
    sm = load_scoring_model("models:/breast_cancer/1", mlflow.get_tracking_uri(), schema=str(schema))
    assert str(schema) in sm.schema_origin
    with pytest.raises(DataValidationError, match="'mean radius'.*10 rows: values outside the allowed range"):
        score_batch(read_chunks(str(later), None, 200)[1], None, sm, tmp_path / "q.parquet", "parquet", "later.csv")
    assert not (tmp_path / "q.parquet").exists()
