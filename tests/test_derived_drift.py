"""A project's own feature, monitored for drift end to end: real train, validate and monitor pipelines (papermill, a real
kernel, MLflow on SQLite) with a user's package as the model's `features` step.

The package derives `load_per_capacity = load / capacity`. In training the two columns move together, so their ratio is
tight; in the shifted batch each keeps its own distribution but they no longer go together, so only the ratio drifts: a
drift the raw columns cannot show, found because the reference sketches the derived column and the monitor derives it
again with the monitored version's own step (the model's code, not the project's checkout: the package is moved away
before monitoring)."""
import json, os, shutil

import numpy as np
import pandas as pd
import pytest

from conftest import latest_result, mlops_nb, versions

FEATURES_PY = '''"The project's features: a ratio of two columns."
from sklearn.base import BaseEstimator, TransformerMixin

class RatioFeatures(BaseEstimator, TransformerMixin):
    "Keeps the input columns and adds load_per_capacity."
    def fit(self, X, y=None):
        self.feature_names_in_ = list(X.columns)
        return self
    def transform(self, X):
        return X.assign(load_per_capacity=X["load"] / X["capacity"])
    def get_feature_names_out(self, input_features=None):
        return [*self.feature_names_in_, "load_per_capacity"]
'''

SETTINGS = """[project]
data = data/train.csv
target = churned
model_name = fleet

[train]
estimator = logistic_regression
"""


def fleet(n, seed, apart=False):
    "Rows of a fleet: load follows capacity (ratio about 0.8); `apart`: the same marginals, load no longer paired with its capacity."
    r = np.random.default_rng(seed)
    capacity = r.uniform(50, 150, n)
    load = capacity * r.normal(0.8, 0.05, n)
    if apart: load = r.permutation(load)
    x, plan = r.normal(size=n), r.choice(["basic", "pro"], n)
    z = 1.2 * (load / capacity - 0.8) / 0.05 + 1.2 * x + np.where(plan == "pro", 1.0, -0.5)
    churned = np.where(r.random(n) < 1 / (1 + np.exp(-z)), "yes", "no")
    return pd.DataFrame({"capacity": capacity.round(2), "load": load.round(2), "x": x.round(4), "plan": plan, "churned": churned})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "A project with its own package, trained with `-p features` / `-p trusted` and validated: version 1 is champion."
    proj = tmp_path_factory.mktemp("derived") / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "ratiofeat").mkdir()
    (proj / "ratiofeat" / "__init__.py").write_text('"A project\'s package."\n')
    (proj / "ratiofeat" / "features.py").write_text(FEATURES_PY)
    (proj / "settings.ini").write_text(SETTINGS)
    fleet(800, 1).to_csv(proj / "data" / "train.csv", index=False)
    fleet(800, 2).to_csv(proj / "data" / "same.csv", index=False)
    fleet(800, 3, apart=True).to_csv(proj / "data" / "apart.csv", index=False)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "MLFLOW_"))}
    # the package is importable as a user's `pip install -e .` makes it (pip cannot run here: no index)
    env = {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(proj), base.get("PYTHONPATH")]))}
    p = mlops_nb("run", "train", "-p", "features", "ratiofeat.features:RatioFeatures", "-p", "trusted", "ratiofeat", cwd=proj, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = mlops_nb("run", "validate", cwd=proj, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    res = latest_result(proj, "validate")
    assert res["verdict"]["passed"] and res["champion"] == "1", res
    # explained like any column: the gate's permutation importance is over the step's output, the ratio included
    assert "load_per_capacity" in open(res["report"], encoding="utf-8").read()
    assert versions(proj, "fleet") == [1]
    shutil.move(proj / "ratiofeat", proj.parent / "ratiofeat_elsewhere")   # from here on only the model's own code has it
    return proj, base


def monitored(proj, env, *args):
    p = mlops_nb("run", "monitor", *args, cwd=proj, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    res = latest_result(proj, "monitor")
    executed = open(res["executed_notebook"], encoding="utf-8").read()   # the cells' printed lines, e.g. what was monitored
    return res, executed, open(res["report"], encoding="utf-8").read()


def test_reference_sketches_the_derived_feature(trained):
    from mlflow import MlflowClient
    proj, _ = trained
    uri = f"sqlite:///{proj / 'workspace' / 'mlflow.db'}"
    c = MlflowClient(uri, registry_uri=uri)
    path = c.download_artifacts(c.get_model_version("fleet", "1").run_id, "monitoring/reference.json", str(proj.parent))
    ref = json.loads(open(path).read())
    assert ref["derived"] == ["load_per_capacity"]
    assert list(ref["features"]) == ["capacity", "load", "x", "plan", "load_per_capacity"]
    assert 0.7 < ref["features"]["load_per_capacity"]["mean"] < 0.9


def test_only_the_derived_feature_drifts(trained):
    proj, env = trained
    res, out, page = monitored(proj, env, "-p", "current", "data/apart.csv")
    assert res["rows"] == 800 and res["labels"] == 800, res
    assert res["drifted_features"] == ["load_per_capacity"], res   # capacity and load each kept their distribution
    assert "load_per_capacity derived by its features step" in out
    assert "drifted features: load_per_capacity (" in page and "features step: load_per_capacity</li>" in page


def test_training_distribution_does_not_drift(trained):
    proj, env = trained
    res, _, page = monitored(proj, env, "-p", "current", "data/same.csv")
    assert res["rows"] == 800 and res["drifted_features"] == [] and not res["drift_detected"], res
    assert "load_per_capacity" in page   # judged and shown like any feature


def test_prediction_log_derives_it_too(trained):
    "The service logs the raw inputs; the monitor makes the ratio again from them with version 1's step."
    from mlops_nb.predlog import PredictionLog
    proj, env = trained
    X = pd.read_csv(proj / "data" / "apart.csv").drop(columns="churned")
    log = PredictionLog(f"sqlite:///{proj / 'workspace' / 'predictions.db'}")
    for i in range(0, 800, 200):
        part = X.iloc[i:i + 200]
        log.log(f"r{i}", "fleet", "1", part.values.tolist(), list(part.columns), ["no"] * len(part))
    log.close()
    res, out, _ = monitored(proj, env)
    assert res["rows"] == 800 and res["drifted_features"] == ["load_per_capacity"], res
    assert "version 1; load_per_capacity derived by its features step" in out
