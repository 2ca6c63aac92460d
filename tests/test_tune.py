"""The tune pipeline end to end: real `mlops-nb run tune` (papermill, a real kernel), Optuna on the workspace journal, MLflow on SQLite."""
import json, time

import pytest

from conftest import client, latest_result, mlops_nb, versions
from dashboard import optuna_dashboard


def _trials(project, run_id):
    "The trials table the run logged (`optuna/trials.json`, MLflow's table format) as a list of dicts."
    path = client(project).download_artifacts(run_id, "optuna/trials.json", str(project / "dl"))
    t = json.loads(open(path).read())
    return [dict(zip(t["columns"], row)) for row in t["data"]]


def test_tune_registers_best_model_and_resumes(project):
    p = mlops_nb("run", "tune", "-p", "estimator", "logistic_regression", "-p", "n_trials", "4", cwd=project)
    assert p.returncode == 0, p.stderr
    res = latest_result(project, "tune")
    assert res["status"] == "succeeded" and res["model_version"] == "1" and res["aliases"] == ["challenger"]
    assert res["study_name"] == "breast_cancer-logistic_regression"
    assert set(res["best_params"]) == {"C"} and res["n_trials"] == 4
    c = client(project)
    mv = c.get_model_version("breast_cancer", "1")
    assert mv.tags["study_name"] == res["study_name"] and mv.tags["best_trial"] == str(res["best_trial"])
    assert {"data_fingerprint", "git_commit", "run_id"} <= set(mv.tags)
    assert str(c.get_model_version_by_alias("breast_cancer", "challenger").version) == "1"
    r = c.get_run(res["run_id"])
    assert r.info.status == "FINISHED"
    assert float(r.data.params["best.C"]) == pytest.approx(res["best_params"]["C"])
    assert r.data.metrics["best_value"] == pytest.approx(res["best_value"]) and "roc_auc" in r.data.metrics
    rows = _trials(project, res["run_id"])
    assert [t["number"] for t in rows] == [0, 1, 2, 3]
    assert {"state", "value", "params", "duration_s"} <= set(rows[0]) and "C" in json.loads(rows[0]["params"])
    arts = {a.path for a in c.list_artifacts(res["run_id"], "optuna")}
    assert {"optuna/study.json", "optuna/trials.json", "optuna/optimization_history.png"} <= arts

    # the same study name again: the study resumes with 2 more trials
    p = mlops_nb("run", "tune", "-p", "estimator", "logistic_regression", "-p", "n_trials", "2", cwd=project)
    assert p.returncode == 0, p.stderr
    res2 = latest_result(project, "tune")
    assert res2["study_name"] == res["study_name"] and res2["n_trials"] == 6 and res2["model_version"] == "2"
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    storage = JournalStorage(JournalFileBackend(str(project / "workspace" / "optuna.journal")))
    assert len(optuna.load_study(study_name=res["study_name"], storage=storage).trials) == 6
    assert len(_trials(project, res2["run_id"])) == 6

    # optuna-dashboard opens the workspace's journal as it is (README: "Looking at a study")
    with optuna_dashboard(str(project / "workspace" / "optuna.journal"), project / "dashboard.log") as study:
        summary, detail = study(res["study_name"])
        assert summary["directions"] == ["maximize"]
        assert [t["number"] for t in detail["trials"]] == list(range(6)) and {t["state"] for t in detail["trials"]} == {"Complete"}
        (best,) = detail["best_trials"]
        assert best["number"] == res2["best_trial"] and best["values"] == [pytest.approx(res2["best_value"])]
        assert {p["name"]: float(p["param_external_value"]) for p in best["params"]} == pytest.approx(res2["best_params"])


@pytest.mark.parametrize("args, message", [
    (["-p", "n_trials", "0"], "SettingsError: parameter n_trials must be a whole number >= 1, got 0"),
    (["-p", "estimator", "xgb"], "SettingsError: unknown estimator 'xgb'"),
    (["-p", "search_space", "{}"], "SettingsError: parameter search_space: is empty"),
    (["-p", "storage", "postgresql://u:p@127.0.0.1:1/x"], "SettingsError: parameter storage postgresql://u:***@127.0.0.1:1/x"),
])
def test_bad_tuning_inputs_fail_fast(project, args, message):
    t0 = time.monotonic()
    p = mlops_nb("run", "tune", *args, cwd=project, timeout=60)
    assert time.monotonic() - t0 < 20
    assert p.returncode != 0
    assert message in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and "u:p@" not in p.stderr
    res = latest_result(project, "tune")
    assert res["status"] == "failed" and message in res["error"] and "u:p@" not in json.dumps(res)
    assert versions(project) == []
