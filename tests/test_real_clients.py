"""Real clients on real-looking data: MLflow's own pyfunc client in a process of its own, and monitoring, on a data set with
whole-number columns (with and without missing values) and a date column, as pandas reads it from CSV and Parquet."""
import json, os, sys, tempfile

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, client, latest_result, mlops_nb, run

TARGET = "label"

# MLflow's own client, as a service engineer would try it first: nothing of mlops_nb imported by the script
PYFUNC = """
import json, sys
import mlflow, pandas as pd
uri, name, path, target = sys.argv[1:]
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
assert not [m for m in sys.modules if m.split(".")[0] == "mlops_nb"]
model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
df = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
types = {c: str(t) for c, t in df.dtypes.items()}
print(json.dumps(dict(types=types, predictions=[str(p) for p in model.predict(df.drop(columns=[target]))],
                      signature={c.name: c.type.name for c in model.metadata.get_input_schema().inputs})))
"""


def houses(n, seed, start="2020-01-01"):
    "Whole numbers without missing values (year), with some (rooms), a float, a category, a date as text, a label."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"year": rng.integers(1990, 2020, n), "rooms": rng.integers(1, 8, n).astype(float),
                       "area": rng.normal(100, 20, n).round(1), "city": rng.choice(["north", "south", "east"], n),
                       "sold": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d")})
    df.loc[rng.choice(n, n // 10, replace=False), "rooms"] = np.nan
    df[TARGET] = np.where(df.area + (df.year - 2005) * 2 > 100, "high", "low")
    return df


def write_parquet(df, path):
    "As an export tool writes it: rooms an int64 column with nulls, sold a date-time column (no pandas metadata)."
    import pyarrow as pa, pyarrow.parquet as pq
    cols = {c: pa.array(df[c].tolist()) for c in df.columns}
    cols["rooms"] = pa.array([None if v != v else int(v) for v in df.rooms], pa.int64())
    cols["sold"] = pa.array(pd.to_datetime(df.sold).to_numpy(dtype="datetime64[us]"))
    pq.write_table(pa.table(cols), path)


def env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))} | {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "A project with the houses data as CSV and Parquet, one champion trained on each (logistic regression)."
    from mlops_nb.cli import make_demo_project
    p = make_demo_project(tmp_path_factory.mktemp("clients") / "proj")
    df = houses(300, 0)
    df.to_csv(p / "data" / "houses.csv", index=False)
    write_parquet(df, p / "data" / "houses.parquet")
    for name, f in (("houses_csv", "houses.csv"), ("houses_pq", "houses.parquet")):
        r = mlops_nb("run", "train", "-p", "data", f"data/{f}", "-p", "target", TARGET, "-p", "model_name", name,
                     "-p", "experiment", name, "-p", "estimator", "logistic_regression", cwd=p, env=env())
        assert r.returncode == 0, r.stderr
        client(p).set_registered_model_alias(name, "champion", "1")
    return p


@pytest.mark.parametrize("name, file", [("houses_csv", "houses.csv"), ("houses_pq", "houses.parquet")])
def test_pyfunc_scores_the_training_file(trained, name, file):
    uri = f"sqlite:///{trained / 'workspace' / 'mlflow.db'}"
    script = trained / "pyfunc_client.py"
    script.write_text(PYFUNC)
    r = run([sys.executable, script, uri, name, trained / "data" / file, TARGET], trained, env())
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # the frame as pandas reads it: whole numbers int64, the same with missing values float64; the date as text or date-time
    assert out["types"]["year"] == "int64" and out["types"]["rooms"] == "float64", out["types"]
    assert out["signature"]["year"] == "long" and out["signature"]["rooms"] == "double", out["signature"]
    assert out["signature"]["sold"] == ("string" if file.endswith(".csv") else "datetime"), out["signature"]
    # the same answers as the model gives the checked, prepared frame it was trained on
    import mlflow
    from mlops_nb.features import prepare_frame
    # (through a client of this store: setting MLflow's global URIs here would leak into later tests' subprocesses)
    model = mlflow.sklearn.load_model(mlflow.MlflowClient(uri, registry_uri=uri).get_model_version_download_uri(name, "1"))
    raw = pd.read_csv(trained / "data" / "houses.csv")
    X = prepare_frame(raw.drop(columns=[TARGET]).assign(sold=pd.to_datetime(raw.sold)))
    assert out["predictions"] == [str(p) for p in model.predict(X)]
    assert len(set(out["predictions"])) == 2


def test_monitor_a_model_with_a_date_input(trained):
    "A later batch, with and without its labels, and the prediction log a real service wrote: date-times scored, not drifted."
    later = houses(120, 1, start="2021-06-01")
    later.to_csv(trained / "data" / "later.csv", index=False)
    later.drop(columns=[TARGET]).to_csv(trained / "data" / "later_unlabelled.csv", index=False)
    common = ["-p", "model_name", "houses_csv", "-p", "experiment", "houses_csv"]
    r = mlops_nb("run", "monitor", *common, "-p", "current", "data/later.csv", "-p", "target", TARGET, cwd=trained, env=env())
    assert r.returncode == 0, r.stderr[-3000:]
    res = latest_result(trained, "monitor")
    assert (res["rows"], res["labels"], res["current"] is not None) == (120, 120, True), res
    assert "sold" not in res["drifted_features"]
    r = mlops_nb("run", "monitor", *common, "-p", "current", "data/later_unlabelled.csv", cwd=trained, env=env())
    assert r.returncode == 0, r.stderr[-3000:]
    res = latest_result(trained, "monitor")
    assert (res["rows"], res["labels"]) == (120, 0), res

    # through the prediction log: a real service answers MLflow's records format, logs, and the monitor reads the log
    from test_serve import call, free_port, start, stop
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        p = start([BIN / "mlops-nb", "serve", "--model", "models:/houses_csv@champion", "--port", port], trained, env(), port, log)
        try:
            rows = json.loads(later.drop(columns=[TARGET]).to_json(orient="records"))
            status, body = call(port, "POST", "/invocations", {"dataframe_records": rows})
            assert status == 200 and len(body["predictions"]) == 120, body
        finally:
            assert stop(p) in (0, -15), open(log.name).read()[-2000:]
    r = mlops_nb("run", "monitor", *common, cwd=trained, env=env())
    assert r.returncode == 0, r.stderr[-3000:]
    res = latest_result(trained, "monitor")
    assert res["source"] == "prediction log" and res["rows"] == 120, res
