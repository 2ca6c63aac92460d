"""Clients of `mlflow models serve` against ours, unchanged: both servers for real on loopback, on one small model, the same
payloads to both (cases from MLflow's tests/pyfunc/test_scoring_server.py and its ScoringServerClient)."""
import io, json, math

import pytest

from conftest import BIN
from test_serve import base_env, call, free_port, start, stop


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    "A small scikit-learn pipeline with a double (with missing values), a long and a string column, saved as MLflow saves it."
    import mlflow, numpy as np, pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from mlops_nb.features import build_preprocessor
    from mlops_nb.trust import trusted_types
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60), "n": rng.integers(0, 10, 60), "colour": rng.choice(["red", "blue"], 60)})
    X.loc[::5, "x"] = np.nan
    X.loc[3, "colour"] = np.nan   # a missing text value: MLflow's client writes NaN there too
    y = (X["n"] > 4).astype(int)
    m = Pipeline([("preprocess", build_preprocessor(X)), ("model", LogisticRegression())]).fit(X, y)
    d = tmp_path_factory.mktemp("clients") / "model"
    mlflow.sklearn.save_model(m, d, signature=infer_signature(X, m.predict(X)), serialization_format="skops",
                              skops_trusted_types=trusted_types(m))
    return d, X.head(8).copy()


@pytest.fixture(scope="module")
def servers(model, tmp_path_factory):
    "(our port, MLflow's port), each server started once for the module."
    d, _ = model
    logs = tmp_path_factory.mktemp("logs")
    p1, p2 = free_port(), free_port()
    ours = start([BIN / "mlops-nb", "serve", "--model", d, "--port", p1], d.parent,
                 base_env(d.parent, MLOPS_NB_WORKSPACE=d.parent / "ws", MLOPS_NB_POLL_SECONDS=0), p1, open(logs / "ours.log", "w+"))
    try:
        theirs = start([BIN / "mlflow", "models", "serve", "-m", d, "--env-manager", "local", "-p", p2], d.parent,
                       base_env(d.parent), p2, open(logs / "mlflow.log", "w+"), 180)
    except Exception:
        stop(ours); raise
    yield p1, p2
    stop(ours); stop(theirs)


def both(servers, body=None, ct="application/json", raw=None):
    "(status, answer) from ours and from MLflow's for the same request."
    return [call(p, "POST", "/invocations", body, {"Content-Type": ct}, raw=raw) for p in servers]


def test_scoring_server_client_with_missing_values(servers, model):
    "MLflow's own client: a frame with a missing value (written as the NaN literal), and /version."
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    _, X = model
    assert X["x"].isna().any() and X["colour"].isna().any()
    a, b = [ScoringServerClient("127.0.0.1", p) for p in servers]
    assert a.invoke(X).get_predictions().equals(b.invoke(X).get_predictions())
    assert a.get_version() == b.get_version()


def accepted(X):
    "Payloads MLflow's scoring server answers 200 for (name, body or raw bytes, content type)."
    rec = X.to_dict(orient="records")
    nan = json.dumps({"dataframe_records": rec})          # json.dumps writes a missing value as NaN
    assert "NaN" in nan
    text = [{**r, "x": None if math.isnan(r["x"]) else str(r["x"])} for r in rec]   # numbers as JSON text
    return [("split", {"dataframe_split": X.to_dict(orient="split")}, "application/json"),
            ("split, charset", {"dataframe_split": X.to_dict(orient="split")}, "application/json; charset=UTF-8"),
            ("split, other order", {"dataframe_split": X[["colour", "x", "n"]].to_dict(orient="split")}, "application/json"),
            ("records, NaN", nan.encode(), "application/json"),
            ("records, params", {"dataframe_records": rec, "params": {"unused": 1}}, "application/json"),
            ("instances", {"instances": rec}, "application/json"),
            ("inputs", {"inputs": rec}, "application/json"),
            ("inputs, columns", {"inputs": X.to_dict(orient="list")}, "application/json"),
            ("instances, columns", {"instances": X.to_dict(orient="list")}, "application/json"),
            ("numbers as text", {"dataframe_records": text}, "application/json"),
            ("csv", X.to_csv(index=False).encode(), "text/csv"),
            ("parquet", X.to_parquet(), "application/vnd.apache.parquet")]


def test_accepts_what_mlflow_accepts(servers, model):
    _, X = model
    for name, body, ct in accepted(X):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        (s1, a), (s2, b) = both(servers, ct=ct, raw=raw)
        assert s2 == 200, (name, s2, b)                      # the case is one MLflow accepts
        assert s1 == 200 and a == b, (name, s1, a, b)        # and we answer the same


def test_refuses_what_mlflow_refuses(servers, model):
    "Where MLflow refuses (4xx, or 500 for a client's mistake), we answer a 4xx naming what to fix."
    _, X = model
    rec = X.to_dict(orient="records")
    cases = [("malformed", b"this is,,,, not valid json", "application/json"), ("a list", b"[1]", "application/json"),
             ("a number", b"1", "application/json"), ("no format", b'{"not": "a serialized dataframe"}', "application/json"),
             ("two formats", b'{"dataframe_records": [], "dataframe_split": {"data": []}}', "application/json"),
             ("split as records", json.dumps({"dataframe_split": rec}).encode(), "application/json"),
             ("records as split", json.dumps({"dataframe_records": X.to_dict(orient="split")}).encode(), "application/json"),
             ("not a number", json.dumps({"dataframe_records": [{**rec[1], "x": "abc"}]}).encode(), "application/json"),
             ("missing column", json.dumps({"dataframe_records": [{"x": 1.0, "colour": "red"}]}).encode(), "application/json"),
             ("empty csv", b"", "text/csv"), ("bad parquet", b"PAR1 not parquet", "application/vnd.apache.parquet"),
             ("content type", json.dumps({"dataframe_records": rec}).encode(), "not_a_supported_content_type"),
             ("charset", json.dumps({"dataframe_records": rec}).encode(), "application/json; charset=latin-1")]
    for name, raw, ct in cases:
        (s1, a), (s2, b) = both(servers, ct=ct, raw=raw)
        assert s2 >= 400, (name, s2, b)
        assert 400 <= s1 < 500 and a["message"] and a["field"], (name, s1, a)


def test_csv_with_missing_values_and_text(servers, model):
    "CSV as pandas writes it, with an empty field for a missing value: the same predictions as the JSON form."
    _, X = model
    (s1, a), (s2, b) = both(servers, ct="text/csv", raw=X.to_csv(index=False).encode())
    (s3, c), _ = both(servers, {"dataframe_split": X.to_dict(orient="split")})
    assert (s1, s2, s3) == (200, 200, 200) and a == b == c
