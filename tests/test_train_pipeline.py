"""The train pipeline end to end: real papermill runs with a real kernel, a real MLflow SQLite store."""
import json, os, time

import mlflow
import pandas as pd
import pytest

from conftest import BIN, client, latest_result, mlops_nb, run, versions
from mlops_nb.data import fingerprint
from mlops_nb.pipeline import pipeline_path

LINEAGE = {"data_fingerprint", "git_commit", "git_dirty", "package_version", "pipeline", "notebook", "run_id"}


def check_registered(project, version, res):
    "A registered version carrying its lineage; its run logged the notebook and the dataset with our fingerprint."
    c = client(project)
    mv = c.get_model_version("breast_cancer", str(version))
    assert LINEAGE <= set(mv.tags), mv.tags
    fp = fingerprint(pd.read_csv(project / "data" / "breast_cancer.csv"))
    assert mv.tags["data_fingerprint"] == fp
    assert mv.tags["run_id"] == res["run_id"] == mv.run_id
    r = c.get_run(res["run_id"])
    assert r.info.status == "FINISHED"
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(r.data.metrics)
    assert r.inputs.dataset_inputs[0].dataset.digest == fp
    return mv, r


def test_mlops_nb_run_train(project, use_store):
    p = mlops_nb("run", "train", "-p", "estimator", "logistic_regression", cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project)
    assert res["status"] == "succeeded" and res["model_version"] == "1"
    assert res["aliases"] == ["challenger"]     # only the validation gate makes a champion (tests/test_gate.py)
    mv, r = check_registered(project, 1, res)
    # the executed notebook is kept in the workspace and logged to the run
    assert os.path.exists(res["executed_notebook"])
    assert [a.path for a in client(project).list_artifacts(r.info.run_id, "notebook")] == ["notebook/train.ipynb"]
    model = mlflow.pyfunc.load_model("models:/breast_cancer@challenger")
    X = pd.read_csv(project / "data" / "breast_cancer.csv").drop(columns="diagnosis").head(5)
    assert set(model.predict(X)) <= {"benign", "malignant"}


def test_plain_papermill_train(project, tmp_path, use_store):
    out = tmp_path / "out" / "train.ipynb"
    out.parent.mkdir()
    p = run([BIN / "papermill", pipeline_path("train"), out, "-p", "data", project / "data" / "breast_cancer.csv",
             "-p", "target", "diagnosis", "-p", "estimator", "sklearn.linear_model.LogisticRegression",
             "-p", "model_name", "breast_cancer"], cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project)   # plain papermill: the result lands in the workspace's results/
    assert res["model_version"] == "1" and res["status"] == "succeeded"
    check_registered(project, 1, res)
    assert res["notebook"] == str(out)   # the result names the executed notebook, and it is logged once papermill wrote it
    logged = lambda: [a.path for a in client(project).list_artifacts(res["run_id"], "notebook")]
    for _ in range(120):
        if logged(): break
        time.sleep(0.5)
    assert logged() == ["notebook/train.ipynb"]
    assert len(mlflow.pyfunc.load_model("models:/breast_cancer@challenger").predict(
        pd.read_csv(project / "data" / "breast_cancer.csv").drop(columns="diagnosis").head(3))) == 3


def test_second_run_is_challenger_with_same_fingerprint(project):
    assert mlops_nb("run", "train", "-p", "estimator", "logistic_regression", cwd=project).returncode == 0
    assert mlops_nb("run", "train", "-p", "estimator", "dummy", cwd=project).returncode == 0
    c = client(project)
    assert str(c.get_model_version_by_alias("breast_cancer", "challenger").version) == "2"
    fps = {c.get_model_version("breast_cancer", v).tags["data_fingerprint"] for v in ("1", "2")}
    assert len(fps) == 1


# --- bad input: a clear message, a non-zero exit, and no new model version --------------------------------------

@pytest.mark.parametrize("args, message", [
    (["-p", "sed", "1"], "unknown parameter 'sed' for train.ipynb; accepted: data, query, target"),
    (["-p", "seed", "one"], "setting 'seed' (parameter) expects int, got 'one'"),
    (["-p", "test_size", "lots"], "setting 'test_size' (parameter) expects float, got 'lots'"),
])
def test_bad_parameters_fail_before_any_work(project, args, message):
    p = mlops_nb("run", "train", *args, cwd=project)
    assert p.returncode == 2
    assert p.stderr.startswith(f"error: {message}") and p.stderr.count("\n") == 1
    assert not (project / "workspace" / "runs").exists() or not any((project / "workspace" / "runs").iterdir())


@pytest.mark.parametrize("args, message", [
    (["-p", "data", "missing.csv"], "DataError: data file not found: /"),   # the path made absolute: where it was looked for
    (["-p", "target", "label"], "DataError: target column 'label' is not in the data; columns are: mean radius"),
])
def test_bad_data_fails_cleanly(project, args, message):
    p = mlops_nb("run", "train", *args, cwd=project)
    assert p.returncode == 1
    assert message in p.stderr
    assert "Traceback" not in p.stderr          # a user's mistake reads as one line, not a stack
    res = latest_result(project)
    assert res["status"] == "failed" and message in res["error"]
    assert os.path.exists(res["executed_notebook"]) and res["executed_notebook"] in p.stderr   # the failed notebook is kept
    assert client(project).get_run(res["run_id"]).info.status == "FAILED"
    assert versions(project) == []


def test_one_class_target_is_a_user_error(project):
    "A target with one class: which class, how many rows, what to do; one line, a non-zero exit, nothing registered."
    df = pd.read_csv(project / "data" / "breast_cancer.csv")
    df.assign(diagnosis="benign").to_csv(project / "data" / "one.csv", index=False)
    p = mlops_nb("run", "train", "-p", "data", "data/one.csv", cwd=project)
    assert p.returncode == 1, p.stderr
    assert ("DataError: target column 'diagnosis' has only one class in its 569 rows ('benign': 569 rows): "
            "a classifier needs at least two") in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and "labels array" not in p.stderr
    assert latest_result(project)["status"] == "failed" and versions(project) == []

def _notebook(path, *cells, params=None):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    cs = []
    if params is not None:
        c = new_code_cell(params); c.metadata["tags"] = ["parameters"]; cs.append(c)
    cs += [new_code_cell(c) for c in cells]
    nb = new_notebook(cells=cs, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


START = ("from mlops_nb.config import get_settings\nfrom mlops_nb.pipeline import start_run\n"
         "run = start_run('custom', get_settings())")


def test_notebook_that_raises(project):
    nb = _notebook(project / "boom.ipynb", START, "raise RuntimeError('the model exploded')", params="x: int = 1")
    p = mlops_nb("run", str(nb), "-p", "x", "2", cwd=project)
    assert p.returncode == 1
    assert "RuntimeError: the model exploded" in p.stderr and "Traceback" in p.stderr   # an unexpected error keeps its stack
    res = latest_result(project, "boom")
    assert res["status"] == "failed"
    run_ = client(project).get_run(res["run_id"])
    assert run_.info.status == "FAILED"
    assert [a.path for a in client(project).list_artifacts(res["run_id"], "notebook")] == ["notebook/boom.ipynb"]
    assert versions(project) == []


def test_cell_timeout_stops_the_run(project):
    nb = _notebook(project / "slow.ipynb", START, "import time; time.sleep(600)")
    p = mlops_nb("run", str(nb), cwd=project, env={**os.environ, "MLOPS_NB_CELL_TIMEOUT": "15"}, timeout=120)
    assert p.returncode == 1
    assert "ran longer than cell_timeout" in p.stderr
    res = latest_result(project, "slow")
    assert client(project).get_run(res["run_id"]).info.status == "FAILED"


def test_dead_kernel_ends_the_run(project):
    nb = _notebook(project / "die.ipynb", START, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    p = mlops_nb("run", str(nb), cwd=project, timeout=120)
    assert p.returncode == 1
    assert "kernel died" in p.stderr
    res = latest_result(project, "die")
    assert client(project).get_run(res["run_id"]).info.status == "FAILED"
