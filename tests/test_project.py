"""A user's own project, notebook-first, end to end: `mlops-nb new` makes it; a data scientist adds a feature in its
notebook and exports it; the project's own CI script passes; the train and validate pipelines build a LightGBM
champion whose first step is the project's transformer; `mlops-nb serve` answers from a folder where the project is
not (the model carries its code); in a fresh virtual environment built only from the model's own requirements, MLflow's
pyfunc and then `mlops-nb serve` give the same predictions as in-process; and settings that cannot work stop the train
pipeline before any version is registered, with one line that says what to change.

Real parts only: the `mlops-nb` command, papermill kernels, MLflow on SQLite, nbdev, git, uv, uvicorn over HTTP."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import BIN, mlops_nb, run, versions
from test_serve import call, free_port, start, stop

ROOT = Path(__file__).resolve().parents[1]
PKG = "churn_model"
NEW_FEATURE = '        X["charge_per_month"] = X["total_charges"] / X["tenure_months"].clip(lower=1)\n'


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_")) and k != "PYTHONPATH"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "OMP_NUM_THREADS": "1", **{k: str(v) for k, v in extra.items()}}


def git(*args, cwd):
    r = run(["git", "-c", "user.name=ds", "-c", "user.email=ds@example.com", *args], cwd)
    assert r.returncode == 0, r.stderr


def add_feature(proj):
    "What a data scientist does in nbs/01_features.ipynb: a second column in the transformer, and its test."
    path = proj / "nbs" / "01_features.ipynb"
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    cls = next(c for c in code if "class ChurnFeatures" in "".join(c["source"]))
    src = cls["source"]
    src.insert(next(i for i, l in enumerate(src) if "calls_per_year" in l and "X[" in l) + 1, NEW_FEATURE)
    test = next(c for c in code if "test_eq(out[\"calls_per_year\"]" in "".join(c["source"]))
    test["source"] = ['raw = pd.DataFrame(dict(tenure_months=[24, 0], support_calls=[4, 1], total_charges=[480.0, 30.0]))\n',
                      'out = ChurnFeatures().fit(raw).transform(raw)\n',
                      'test_eq(out["calls_per_year"].tolist(), [2.0, 12.0])\n',
                      'test_eq(out["charge_per_month"].tolist(), [20.0, 30.0])']
    path.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    "A new project with the data scientist's feature added, exported and committed; importable as `pip install -e .` makes it."
    base = tmp_path_factory.mktemp("user")
    r = mlops_nb("new", base / "churn-model", cwd=base, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert f"package {PKG}" in r.stdout and "bash scripts/check" in r.stdout
    p = base / "churn-model"
    git("init", "-q", cwd=p); git("add", "-A", cwd=p); git("commit", "-qm", "mlops-nb new", cwd=p)
    add_feature(p)
    for cmd in ("nbdev-clean", "nbdev-export"):   # as the project's README says, before every commit
        r = run([BIN / cmd], p, clean_env())
        assert r.returncode == 0, r.stderr
    assert NEW_FEATURE.strip() in (p / PKG / "features.py").read_text()
    git("commit", "-qam", "a feature: charge per month", cwd=p)
    return p


def penv(proj, **extra):
    "The project's environment: its package importable (the developer's `pip install -e .`)."
    return clean_env(PYTHONPATH=proj, **extra)


def test_the_projects_own_checks_pass(proj):
    "scripts/check is what the project's CI runs: notebooks clean and in sync, nbdev-test, a smoke train."
    r = run(["bash", "scripts/check"], proj, penv(proj), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "train: succeeded" in r.stdout and "Success." in r.stdout + r.stderr
    assert "does not end in one of" not in r.stderr   # papermill's warning about the hidden partial notebook is gone
    assert not run(["git", "status", "--porcelain"], proj).stdout.strip()   # the check changed nothing, left nothing
    wf = (proj / ".github" / "workflows" / "ci.yml").read_text()
    assert "bash scripts/check" in wf and "pip install -e \".[dev]\"" in wf


def test_a_changed_notebook_fails_the_check(proj, tmp_path):
    "A feature written in the notebook but not exported is caught, with what to run."
    work = tmp_path / "clone"
    shutil.copytree(proj, work)
    nb = work / "nbs" / "01_features.ipynb"
    nb.write_text(nb.read_text().replace("calls_per_year", "calls_yearly"))
    git("commit", "-qam", "renamed in the notebook only", cwd=work)
    r = run(["bash", "scripts/check"], work, penv(work), timeout=600)
    assert r.returncode == 1 and "run them and commit" in r.stderr and f"{PKG}/features.py" in r.stderr, r.stderr[-2000:]


@pytest.fixture(scope="module")
def champion(proj):
    "LightGBM on the project's features, trained and through the gate: version 1, champion."
    r = mlops_nb("run", "train", "-p", "estimator", "lightgbm", cwd=proj, env=penv(proj))
    assert r.returncode == 0, r.stdout + r.stderr
    r = mlops_nb("run", "validate", cwd=proj, env=penv(proj))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((proj / "workspace" / "results" / "validate.json").read_text())
    assert res["verdict"]["passed"] and res["champion"] == "1", res
    return proj, f"sqlite:///{proj / 'workspace' / 'mlflow.db'}", res


def raw_rows(proj, n=50):
    return pd.read_csv(proj / "data" / "churn.csv").drop(columns="churned").head(n)


def in_process(uri, rows):
    "The champion's predictions through MLflow's pyfunc, here (the project is not on this process's path)."
    import mlflow
    mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
    try: out = [str(p) for p in mlflow.pyfunc.load_model(f"models:/{PKG}@champion").predict(rows)]
    finally: mlflow.set_tracking_uri(None); mlflow.set_registry_uri(None)
    assert "/code/" in sys.modules[PKG].__file__, sys.modules[PKG].__file__   # the model's copy of the package
    return out


def test_the_champion_holds_the_projects_step_and_code(champion):
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    proj, uri, res = champion
    source = MlflowClient(uri, registry_uri=uri).get_model_version_download_uri(PKG, "1")
    local = Path(download_artifacts(artifact_uri=source, dst_path=str(proj.parent / "art"), tracking_uri=uri))
    assert NEW_FEATURE.strip() in (local / "code" / PKG / "features.py").read_text()   # the exported notebook travels
    mlmodel = (local / "MLmodel").read_text()
    assert f"{PKG}.features.ChurnFeatures" in mlmodel and "lightgbm" in mlmodel
    # signup_date is a date input: its date-part step travels too, so the fresh environment below needs no mlops_nb
    assert "mlops_nb_dates.date_parts" in mlmodel and (local / "code" / "mlops_nb_dates.py").is_file()
    reqs = (local / "requirements.txt").read_text()
    assert "lightgbm==" in reqs and "mlops-nb" not in reqs and PKG not in reqs.replace("-", "_"), reqs
    page = open(res["report"], encoding="utf-8").read()
    assert "calls_per_year" in page and "charge_per_month" in page   # explained in the gate like any column


def test_served_where_the_project_is_not(champion, tmp_path):
    "mlops-nb serve from an empty folder, without the project on the path: the model's own code answers."
    proj, uri, _ = champion
    rows = raw_rows(proj)
    port, log = free_port(), open(tmp_path / "serve.log", "w")
    p = start([BIN / "mlops-nb", "serve", "--model", f"models:/{PKG}@champion", "--port", port], tmp_path,
              clean_env(MLFLOW_TRACKING_URI=uri, MLOPS_NB_WORKSPACE=tmp_path / "ws"), port, log)
    try:
        status, body = call(port, "POST", "/invocations", {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
    finally: stop(p)
    assert status == 200, body
    assert [str(v) for v in body["predictions"]] == in_process(uri, rows)
    assert set(body["predictions"]) == {"yes", "no"}


PYFUNC = """import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])
rows = pd.read_csv(sys.argv[2]).drop(columns="churned").head(int(sys.argv[3]))
print(json.dumps([str(p) for p in mlflow.pyfunc.load_model("models:/%s@champion").predict(rows)]))
assert "mlops_nb" not in sys.modules, "mlops_nb was imported"
here = sys.modules["%s"].__file__
assert "/code/" in here and not here.startswith(sys.argv[4] + "/%s/"), here   # the model's own copy, not the checkout
""" % (PKG, PKG, PKG)


@pytest.mark.slow
def test_fresh_venv_from_the_models_requirements(champion, tmp_path):
    """A new virtual environment with only what `mlflow.pyfunc.get_model_dependencies` lists (pinned by
    constraints.txt): pyfunc predicts as here; then mlops-nb installed from its wheel serves the same answers."""
    import mlflow
    proj, uri, _ = champion
    mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
    try: reqs = mlflow.pyfunc.get_model_dependencies(f"models:/{PKG}@champion")
    finally: mlflow.set_tracking_uri(None); mlflow.set_registry_uri(None)
    venv, empty = tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    uv = BIN / "uv"
    r = run([uv, "venv", "-q", "--python", sys.executable, venv], tmp_path, clean_env())
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    r = run([uv, "pip", "install", "-q", "--python", py, "-r", reqs, "-c", ROOT / "constraints.txt"], tmp_path, clean_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    (empty / "client.py").write_text(PYFUNC)
    expected = in_process(uri, raw_rows(proj))
    r = run([py, "client.py", uri, proj / "data" / "churn.csv", 50, proj], empty, clean_env())
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == expected
    assert run([py, "-c", "import mlops_nb"], empty, clean_env()).returncode == 1   # it was not there
    # the service engineer's way: mlops-nb from a wheel (not editable) beside the model's requirements
    r = run([uv, "pip", "install", "-q", "--python", py, ROOT, "-c", ROOT / "constraints.txt"], tmp_path, clean_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    port, log = free_port(), open(tmp_path / "serve.log", "w")
    p = start([venv / "bin" / "mlops-nb", "serve", "--model", f"models:/{PKG}@champion", "--port", port], empty,
              clean_env(MLFLOW_TRACKING_URI=uri, MLOPS_NB_WORKSPACE=tmp_path / "ws"), port, log)
    try:
        rows = raw_rows(proj)
        status, body = call(port, "POST", "/invocations", {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
    finally: stop(p)
    assert status == 200, body
    assert [str(v) for v in body["predictions"]] == expected


BAD_MODULES = {"oddities/__init__.py": "", "oddities/steps.py": '''
from sklearn.base import BaseEstimator, TransformerMixin
def answer(): return 42
class Passthrough(TransformerMixin, BaseEstimator):
    "A transformer from a package the settings do not trust."
    def fit(self, X, y=None): return self
    def transform(self, X): return X
'''}


@pytest.mark.parametrize("features, says", [
    ("churn_model.nothere:Step", "setting 'features': cannot import 'churn_model.nothere'"),
    ("oddities.steps:answer", "setting 'features': oddities.steps:answer gave int '42', not a scikit-learn transformer"),
    ("oddities.steps:Passthrough", "oddities.steps.Passthrough"),
])
def test_settings_that_cannot_work_stop_before_a_version(proj, tmp_path, features, says):
    work = tmp_path / "proj"
    shutil.copytree(proj, work, ignore=shutil.ignore_patterns("workspace"))
    for rel, text in BAD_MODULES.items():
        (work / rel).parent.mkdir(exist_ok=True); (work / rel).write_text(text)
    r = mlops_nb("run", "train", "-p", "features", features, cwd=work, env=penv(work))
    assert r.returncode != 0
    err = [l for l in r.stderr.splitlines() if l.strip()]
    # one line says what is wrong and what to change; the next only where the executed notebook is
    assert len(err) == 2 and err[0].startswith("error: pipeline train failed: ") and says in err[0], r.stderr
    assert err[1].startswith("executed notebook kept at "), r.stderr
    if "Passthrough" in features: assert "trusted" in err[0]
    assert versions(work, PKG) == []
