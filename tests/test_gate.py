"""The validation gate, promotion, rollback and the registry under faults: real papermill runs and real processes."""
import json, os, signal, subprocess, sys, time

import mlflow
import pytest

from conftest import client, latest_result, mlops_nb


def alias(project, name="breast_cancer", a="champion"):
    from mlflow.exceptions import MlflowException
    try: return str(client(project).get_model_version_by_alias(name, a).version)
    except MlflowException: return None


def served_version(project, uri="models:/breast_cancer@champion"):
    "The registered version that `models:/NAME@champion` loads (its run id, matched to the version's run)."
    m = mlflow.pyfunc.load_model(uri)
    (v,) = [v for v in client(project).search_model_versions("name='breast_cancer'") if v.run_id == m.metadata.run_id]
    return str(v.version)


def test_trivial_challenger_rejected_better_promoted_rollback(project, use_store):
    # a first model passes the absolute and baseline checks and becomes champion
    assert mlops_nb("run", "train", "-p", "estimator", "logistic_regression", cwd=project).returncode == 0
    assert alias(project) is None                      # training alone never makes a champion
    p = mlops_nb("run", "validate", cwd=project)
    assert p.returncode == 0, p.stderr
    assert alias(project) == "1" == served_version(project)

    # a trivial challenger is rejected: non-zero exit, reasons named, champion untouched
    assert mlops_nb("run", "train", "-p", "estimator", "dummy", cwd=project).returncode == 0
    p = mlops_nb("run", "validate", cwd=project)
    assert p.returncode == 1
    assert "GateFailed" in p.stderr and "baseline:" in p.stderr and "regression:" in p.stderr
    assert "Traceback" not in p.stderr
    assert alias(project) == "1" == served_version(project)
    mv = client(project).get_model_version("breast_cancer", "2")
    assert mv.tags["verdict"] == "failed" and "baseline" in mv.tags["verdict_reasons"]
    res = latest_result(project, "validate")
    assert res["verdict"]["passed"] is False and res["champion"] == "1"
    assert os.path.exists(res["report"]) and "Verdict: FAILED" in open(res["report"]).read()
    assert client(project).get_run(res["run_id"]).info.status == "FINISHED"   # the gate ran; its verdict is the failure

    # a better challenger is promoted
    assert mlops_nb("run", "train", cwd=project).returncode == 0            # histogram gradient boosting, version 3
    p = mlops_nb("run", "validate", cwd=project)
    assert p.returncode == 0, p.stderr
    assert alias(project) == "3" == served_version(project)
    assert client(project).get_model_version("breast_cancer", "3").tags["verdict"] == "passed"

    # rollback restores the previous champion, and status shows the record
    p = mlops_nb("rollback", "breast_cancer", "--reason", "test", cwd=project)
    assert p.returncode == 0 and "now version 1" in p.stdout
    assert alias(project) == "1" == served_version(project)
    p = mlops_nb("status", cwd=project)
    assert p.returncode == 0
    assert "champion   version 1" in p.stdout and "rollback" in p.stdout and "v3 -> v1" in p.stdout


def test_first_model_must_beat_baseline(project):
    assert mlops_nb("run", "train", "-p", "estimator", "dummy", cwd=project).returncode == 0
    p = mlops_nb("run", "validate", cwd=project)
    assert p.returncode == 1 and "baseline:" in p.stderr
    assert alias(project) is None


def test_manual_promotion_runs_the_gate_unless_forced(project):
    for est in ("logistic_regression", "dummy"):
        assert mlops_nb("run", "train", "-p", "estimator", est, cwd=project).returncode == 0
    assert mlops_nb("promote", "breast_cancer", "1", cwd=project).returncode == 0
    p = mlops_nb("promote", "breast_cancer", "2", cwd=project)
    assert p.returncode == 1 and "baseline:" in p.stderr
    assert alias(project) == "1"
    p = mlops_nb("promote", "breast_cancer", "2", "--force", "--reason", "hotfix", cwd=project)
    assert p.returncode == 0 and alias(project) == "2"
    assert client(project).get_model_version("breast_cancer", "2").tags["promotion_reason"] == "forced: hotfix"
    p = mlops_nb("promote", "breast_cancer", "9", "--force", cwd=project)
    assert p.returncode == 2 and "has no version 9" in p.stderr


# --- the registry under faults ----------------------------------------------------------------------------------

@pytest.fixture
def two_versions(project, use_store):
    "A store with versions 1 and 2 of breast_cancer (logged in-process, no training pipeline), 1 champion."
    from mlops_nb.cli import demo_data
    from mlops_nb.config import get_settings, use_mlflow
    from mlops_nb.registry import promote
    from mlops_nb.train import build_model, features_target, log_model, make_estimator
    use_mlflow(get_settings())
    X, y = features_target(demo_data(), "diagnosis")
    m = build_model(X, make_estimator("dummy", "classification")).fit(X, y)
    for _ in range(2):
        with mlflow.start_run(): log_model(m, X, "breast_cancer")
    promote("breast_cancer", "1", "setup")
    return project


PROMOTER = """
import sys, time
from mlops_nb.config import get_settings, use_mlflow
from mlops_nb.registry import promote
use_mlflow(get_settings())
print("ready", flush=True)
start = float(sys.argv[1]); versions = sys.argv[2].split(",")
while time.time() < start: time.sleep(0.001)
i = 0
while True:
    promote("breast_cancer", versions[i % len(versions)], f"promoter {sys.argv[3]} #{i}", by=sys.argv[3])
    i += 1
    print(f"promoted {i}", flush=True)
    if len(sys.argv) > 4 and i >= int(sys.argv[4]): break
"""


def _champions(project):
    "Every version that holds the champion alias (there must be exactly one)."
    c = client(project)   # search_model_versions does not fill in aliases: read each version
    return [str(v.version) for v in c.search_model_versions("name='breast_cancer'")
            if "champion" in c.get_model_version("breast_cancer", str(v.version)).aliases]


def _record_state(project):
    "(champion, whether its promotion is completely recorded): the latest history entry names it, its version tags match it."
    from mlops_nb.registry import history
    champ, h = alias(project), history("breast_cancer")
    tags = client(project).get_model_version("breast_cancer", champ).tags
    return champ, bool(h) and h[-1]["version"] == champ and all(tags.get(t) == h[-1][k] for t, k in
                  (("promoted_at", "at"), ("promoted_by", "by"), ("promotion_reason", "reason")))


def _next_run_completes(project, caplog):
    "The next registry operation (here `model_status`, as `mlops-nb status` runs it) leaves a complete record, and says when it completed one."
    from mlops_nb.registry import model_status
    before = _record_state(project)
    caplog.clear()
    with caplog.at_level("WARNING", logger="mlops_nb.registry"): st = model_status("breast_cancer")
    after = _record_state(project)
    assert after == (before[0], True), (before, after)          # the champion stays; its record is now complete
    assert st["champion"]["promoted_at"] == st["history"][-1]["at"]
    if not before[1]: assert "completed the record of an interrupted promotion" in caplog.text
    assert not [k for k in client(project).get_registered_model("breast_cancer").tags if k.startswith("pending.")]
    return before


def test_kill_mid_promotion_leaves_registry_consistent(two_versions, tmp_path, caplog):
    project = two_versions
    script = tmp_path / "promoter.py"; script.write_text(PROMOTER)
    from mlops_nb.registry import history
    for delay in (0.05, 0.13, 0.31):   # kill at different points of a promote-in-a-loop
        p = subprocess.Popen([sys.executable, str(script), "0", "1,2", "killer"], cwd=project, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        assert p.stdout.readline().strip() == "ready"
        assert p.stdout.readline().strip() == "promoted 1"   # the loop runs (its first promotion pays the lazy imports)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL); p.wait()
        assert _champions(project) in (["1"], ["2"])
        assert alias(project) in ("1", "2")
        _next_run_completes(project, caplog)
    assert len([h for h in history("breast_cancer") if h["by"] == "killer"]) >= 3   # the loop really ran
    from mlops_nb.registry import rollback
    rec = rollback("breast_cancer", "after the kills")
    assert rec["version"] in ("1", "2") and rec["version"] != rec["previous"]
    assert _champions(project) == [rec["version"]]


KILL_AT_WRITE = """
import os, signal, sys
from mlflow import MlflowClient
from mlops_nb.config import get_settings, use_mlflow
from mlops_nb.registry import promote
use_mlflow(get_settings())
at, writes = int(sys.argv[2]), [0]
def killing(f):   # SIGKILL this process just before its write number `at` to the registry (0: before the first)
    def write(*a, **kw):
        if writes[0] == at: os.kill(os.getpid(), signal.SIGKILL)
        writes[0] += 1
        return f(*a, **kw)
    return write
for m in ("set_registered_model_alias", "delete_registered_model_alias", "set_registered_model_tag",
          "delete_registered_model_tag", "set_model_version_tag", "delete_model_version_tag"):
    setattr(MlflowClient, m, killing(getattr(MlflowClient, m)))
promote("breast_cancer", sys.argv[1], f"kill at write {at}", by="killer")
print("writes", writes[0], flush=True)
"""


def test_kill_at_every_write_of_a_promotion_leaves_a_complete_record(two_versions, tmp_path, caplog):
    "A promotion killed before each of its registry writes in turn: the old state, the complete new one, or one the next run completes."
    project = two_versions
    script = tmp_path / "kill_at_write.py"; script.write_text(KILL_AT_WRITE)
    from mlops_nb.registry import history
    seen, at = set(), 0
    while True:
        old = alias(project); new = "2" if old == "1" else "1"
        n_history = len(history("breast_cancer"))
        p = subprocess.run([sys.executable, str(script), new, str(at)], cwd=project, capture_output=True, text=True, timeout=120)
        assert p.returncode in (0, -signal.SIGKILL), p.stderr
        champion, complete = _next_run_completes(project, caplog)
        assert champion in (old, new)
        seen.add("old" if champion == old else "new, complete" if complete else "new, completed by the next run")
        if champion == old: assert len(history("breast_cancer")) == n_history   # no record of a promotion that did not happen
        if p.returncode == 0: break                          # `at` passed the promotion's last write: it ran to the end
        at += 1
    assert at >= 4 and seen == {"old", "new, completed by the next run", "new, complete"}, (at, seen)


def test_racing_promotions_are_consistent_and_both_recorded(two_versions, tmp_path):
    project = two_versions
    script = tmp_path / "promoter.py"; script.write_text(PROMOTER)
    start = time.time() + 6     # both processes import first, then promote at the same instant
    procs = [subprocess.Popen([sys.executable, str(script), str(start), v, f"racer{v}", "1"], cwd=project,
                              stderr=subprocess.PIPE, text=True) for v in ("1", "2")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _champions(project) in (["1"], ["2"])
    from mlops_nb.registry import history
    racers = [h for h in history("breast_cancer") if h["by"].startswith("racer")]
    assert sorted(h["by"] for h in racers) == ["racer1", "racer2"]
