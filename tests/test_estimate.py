"""Performance without labels through the real pipelines: train logs what the estimate needs, monitor estimates each
window of a batch without its labels, and with `perf_estimate` judges on it (papermill runs of the shipped notebooks)."""
import json, os

import numpy as np
import pytest

from conftest import mlops_nb


def synthetic(n, spread, seed):
    "Rows whose label depends on the inputs the same way in every batch; `spread` sets how far from the boundary they lie."
    import pandas as pd
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(0, spread, n), "x2": rng.normal(0, 1, n), "x3": rng.normal(0, 1, n)})
    p = 1 / (1 + np.exp(-(2.0 * X.x1 - 1.0 * X.x2)))
    return X.assign(y=np.where(rng.uniform(size=n) < p, "yes", "no"))


@pytest.fixture
def trained(project, clean_env):
    synthetic(5000, 1.0, 0).to_csv(project / "reference.csv", index=False)
    env = {**os.environ, "MLOPS_NB_DATA": "reference.csv", "MLOPS_NB_TARGET": "y", "MLOPS_NB_MODEL_NAME": "synth",
           "MLOPS_NB_ESTIMATOR": "logistic_regression"}
    for step in ("train", "validate"):
        p = mlops_nb("run", step, cwd=project, env=env)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return project, env


def monitor(project, env, batch, *params):
    p = mlops_nb("run", "monitor", "--json", "-p", "current", batch, *params, cwd=project, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_estimated_beside_realised_and_judged_without_labels(trained):
    project, env = trained
    # covariate shift: most rows now lie near the decision boundary, where the model is right less often
    shifted = synthetic(3000, 0.3, 1)
    shifted.to_csv(project / "shifted.csv", index=False)
    shifted.drop(columns="y").to_csv(project / "shifted_unlabelled.csv", index=False)

    same = monitor(project, env, "reference.csv")   # the training period itself: estimate and truth agree
    assert same["estimated"]["accuracy_low"] <= same["current"] <= same["estimated"]["accuracy_high"] and same["estimate_holds"], same
    labelled = monitor(project, env, "shifted.csv")  # labels present: the realised metric judges; the estimate beside it
    e, real = labelled["estimated"], labelled["current"]
    assert labelled["performance_basis"] == "labels" and e["rows"] == 3000 and labelled["performance_degraded"] is True and labelled["estimate_holds"]
    assert e["accuracy_low"] <= real <= e["accuracy_high"], (e, real)   # the estimate's band holds the realised accuracy
    assert e["accuracy"] < same["estimated"]["accuracy"] - 0.05 and "realised_roc_auc" in e
    assert e["roc_auc_low"] <= e["realised_roc_auc"] <= e["roc_auc_high"], e
    page = open(labelled["report"]).read()
    assert "estimated without labels on 3000 rows" in page and "concept drift" in page

    blind = monitor(project, env, "shifted_unlabelled.csv", "-p", "perf_estimate", "true")   # no labels: judged on the estimate
    assert blind["labels"] == 0 and blind["performance_basis"] == "estimate" and blind["performance_degraded"] is True, blind
    assert blind["current"] == pytest.approx(e["accuracy"]) and "judged on the estimated accuracy" in blind["note"]
    quiet = monitor(project, env, "shifted_unlabelled.csv")   # perf_estimate off (the default): shown, not judged
    assert quiet["performance_degraded"] is False and quiet["current"] is None and quiet["estimated"]["rows"] == 3000

    concept = synthetic(3000, 1.0, 4); concept["y"] = np.where(concept["y"] == "yes", "no", "yes")   # the relation reversed
    concept.to_csv(project / "concept.csv", index=False)
    c = monitor(project, env, "concept.csv")   # labels say the estimate is wrong: reported as unreliable, not silently wrong
    assert c["estimate_holds"] is False and "concept drift" in c["note"] and c["estimated"]["accuracy"] > c["current"] + 0.3, c
    assert "estimate not to be trusted" in open(c["report"]).read()


def test_alerts_once_per_change_and_gauges_on_metrics(trained, tmp_path):
    "A local receiver gets exactly one alert per verdict change from real monitor runs; the service's /metrics shows the served version's verdict."
    import http.server, threading
    from conftest import BIN, serving, free_port
    project, env = trained
    synthetic(2000, 1.0, 2).to_csv(project / "calm.csv", index=False)
    drifted = synthetic(2000, 1.0, 3); drifted["x2"] = drifted["x2"] + 2; drifted["x3"] = drifted["x3"] * 3
    drifted.to_csv(project / "drifted.csv", index=False)
    got = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))); self.send_response(200); self.end_headers()
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    secret = "T000/B000/s3cr3t-path"
    env = {**env, "MLOPS_NB_ALERT_URL": f"http://127.0.0.1:{srv.server_port}/services/{secret}"}
    try:
        said = []
        for batch in ("calm.csv", "drifted.csv", "drifted.csv", "calm.csv"):   # calm (nothing), drift (alert), same (nothing), back (alert)
            p = mlops_nb("run", "monitor", "-p", "current", batch, cwd=project, env=env, timeout=600)
            assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
            said.append(p.stdout + p.stderr)
        assert [g["drift_detected"] for g in got] == [True, False], [g["text"] for g in got]
        assert got[0]["text"].startswith("synth version 1: DRIFT") and "x3" in got[0]["text"] and got[1]["text"].startswith("synth version 1: back to normal")
        assert not any(secret in s for s in said)   # the URL's secret path is never printed
    finally: srv.shutdown()
    mlops_nb("run", "monitor", "-p", "current", "drifted.csv", cwd=project, env=env, timeout=600)   # the receiver is gone: the run still succeeds
    port = free_port()
    with serving([BIN / "mlops-nb", "serve", "--port", port], f"http://127.0.0.1:{port}/ready", tmp_path / "serve.log", cwd=project, env=env):
        import urllib.request
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    assert "mlops_nb_monitor_drift_detected 1.0" in text and 'mlops_nb_monitor_feature_psi{feature="x3"}' in text, text[-3000:]
    assert 'mlops_nb_monitor_metric{basis="realised",metric="accuracy"}' in text and 'mlops_nb_monitor_metric{basis="estimated",metric="accuracy"}' in text
    assert "mlops_nb_monitor_verdict_timestamp_seconds" in text
