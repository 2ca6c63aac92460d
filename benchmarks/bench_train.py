"""Train pipeline: `mlops-nb run train` against the same code as a plain Python script, and log_model against MLflow's default.

Anchors: (1) the train pipeline's own cells run as a plain `python` script (what a user would write without
notebooks: same data, same library calls, no kernel, no papermill); (2) `mlflow.sklearn.log_model` with MLflow's
default pip-requirement inference; (3) our `log_model` of the built-in model, against the same data with a project's own
feature step (a small package written to a temporary folder, so the model is logged with its code and `trusted`).
Goals: run overhead <= 1.0 s; log_model <= 0.1 s (issue 2); with a feature step and code <= 1.5x the built-in (issue 13).

    .venv/bin/python benchmarks/bench_train.py [--repeat 3]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import nbformat

# MLflow exports MLFLOW_TRACKING_URI/REGISTRY_URI/EXPERIMENT_ID when used in-process: children get a clean copy.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}

from mlops_nb.cli import make_demo_project
from mlops_nb.pipeline import pipeline_path


def notebook_as_script(nb_path, params: dict) -> str:
    "The code cells of the notebook, with the parameters cell overridden as papermill would."
    nb = nbformat.read(nb_path, as_version=4)
    code = []
    for c in nb.cells:
        if c.cell_type != "code": continue
        code.append(c.source)
        if "parameters" in c.metadata.get("tags", []):
            code.append("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    return "\n\n".join(code) + "\n"


def timed(cmd, cwd, env) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode: sys.exit(f"{cmd} failed:\n{r.stdout}\n{r.stderr}")
    return dt


def bench_run(repeat: int):
    proj = make_demo_project(Path(tempfile.mkdtemp()) / "demo")
    env = {**CLEAN_ENV, "PYTHONWARNINGS": "ignore"}
    params = {"estimator": "logistic_regression"}
    script = proj / "train_script.py"
    script.write_text(notebook_as_script(pipeline_path("train"), params))
    # one warm-up each (creates the MLflow database, fills OS caches), then alternate
    timed([sys.executable, str(script)], proj, env)
    cli = [str(Path(sys.executable).parent / "mlops-nb"), "run", "train", "-p", "estimator", "logistic_regression"]
    timed(cli, proj, env)
    plain, ours = [], []
    for _ in range(repeat):
        plain.append(timed([sys.executable, str(script)], proj, env))
        ours.append(timed(cli, proj, env))
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"train pipeline, demo data (569 rows), median of {repeat}:  (samples: plain {[round(x, 2) for x in plain]}, ours {[round(x, 2) for x in ours]})")
    print(f"  plain python script       {p:6.2f} s")
    print(f"  mlops-nb run train        {o:6.2f} s   overhead {o - p:+.2f} s (goal <= 1.00 s)   ratio {o / p:.2f}x")
    return o - p


FEATURES_PY = '''"A project's feature step, as `mlops-nb new` writes one: it keeps the columns and adds a ratio."
from sklearn.base import BaseEstimator, TransformerMixin

class Ratio(BaseEstimator, TransformerMixin):
    def __init__(self, num="mean area", den="mean perimeter"): self.num, self.den = num, den
    def fit(self, X, y=None):
        self.feature_names_in_ = list(X.columns); return self
    def transform(self, X): return X.assign(area_per_perimeter=X[self.num] / X[self.den])
    def get_feature_names_out(self, input_features=None): return [*self.feature_names_in_, "area_per_perimeter"]
'''


def user_package() -> str:
    "A package `benchfeat` in a temporary folder, importable (first on sys.path) as a project's own code is: the `features` setting."
    root = Path(tempfile.mkdtemp()) / "benchfeat"
    root.mkdir()
    (root / "__init__.py").write_text('"A benchmark project\'s package."\n')
    (root / "features.py").write_text(FEATURES_PY)
    sys.path.insert(0, str(root.parent))
    return "benchfeat.features:Ratio"


def bench_log_model(repeat: int):
    import mlflow
    from mlops_nb.cli import demo_data
    from mlops_nb.config import Settings, use_mlflow
    from mlops_nb.features import feature_step
    from mlops_nb.train import build_model, features_target, log_model, make_estimator
    use_mlflow(Settings(workspace=tempfile.mkdtemp(), experiment="bench"))
    X, y = features_target(demo_data(), "diagnosis")
    m = build_model(X, make_estimator("logistic_regression", "classification")).fit(X, y)
    mf = build_model(X, make_estimator("logistic_regression", "classification"), feature_step(user_package()), y).fit(X, y)
    ours, default, feat = [], [], []
    with mlflow.start_run():
        log_model(m, X, "warmup"); log_model(mf, X, "warmup_features", trusted="benchfeat")  # first calls pay one-time imports
        for i in range(repeat):
            t0 = time.perf_counter(); log_model(m, X, "bench"); ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); info = log_model(mf, X, "bench_features", trusted="benchfeat"); feat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            info_d = mlflow.sklearn.log_model(m, name=f"default{i}", input_example=X.head(5), skops_trusted_types=["numpy.dtype"])
            mlflow.register_model(info_d.model_uri, "bench_default")
            default.append(time.perf_counter() - t0)
    code = Path(mlflow.artifacts.download_artifacts(artifact_uri=info["model_uri"])) / "code" / "benchfeat" / "features.py"
    if not code.is_file(): sys.exit(f"the feature-step model was logged without its code: no {code}")
    o, d, f = statistics.median(ours), statistics.median(default), statistics.median(feat)
    print(f"log and register one model, median of {repeat}:  (samples: built-in {[round(x, 3) for x in ours]}, "
          f"feature step {[round(x, 3) for x in feat]})")
    print(f"  mlflow.sklearn.log_model (default requirement inference) {d:6.3f} s")
    print(f"  mlops_nb.train.log_model                                  {o:6.3f} s   (goal <= 0.100 s)   {d / o:.1f}x faster")
    print(f"  mlops_nb.train.log_model, project feature step + code     {f:6.3f} s   (goal <= 1.5x)      ratio {f / o:.2f}x")
    return o


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    bench_log_model(a.repeat)
    bench_run(a.repeat)
