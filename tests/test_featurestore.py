"""The feature store for real: a Feast repository on Parquet with a TTL, its point-in-time join run by the features
pipeline in the Feast environment (a venv of its own: Feast pins pandas < 3), and a model trained, validated and served on
it whose features the service fetches by key from a real `feast serve`. Skipped where there is no Feast environment
(`bash scripts/dev feast` makes it; `bash scripts/dev test`, and so CI, always does)."""
import http.client, json, os, signal, subprocess, time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np, pandas as pd, pytest
from conftest import BIN, client, free_port, mlops_nb, serving

from mlops_nb.config import Settings
from mlops_nb.featurestore import FeatureStoreError, apply, feast_cli, example_entities, example_repo, feast_python, materialize, read_lineage

try: FEAST = feast_python(Settings())
except FeatureStoreError: FEAST = None
# CI makes the Feast environment (bash scripts/dev test): there, a missing one fails these tests instead of skipping them
pytestmark = [pytest.mark.slow, pytest.mark.skipif(FEAST is None and not os.environ.get("CI"), reason="no Feast environment: make it with `bash scripts/dev feast`")]

UTC = timezone.utc
SETTINGS = """[project]
data = data/training.parquet
target = churned
model_name = churn
[features]
feature_repo = repo
"""


def env_of(project, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "MLFLOW_"))}
    e.update(MLOPS_NB_SETTINGS=str(project / "settings.ini"), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra)
    return e


def make_project(tmp_path, name="proj"):
    p = tmp_path / name; (p / "data").mkdir(parents=True)
    (p / "settings.ini").write_text(SETTINGS)
    return p


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_point_in_time_training_set_row_by_row(tmp_path, clean_env):
    "The features pipeline's training set against values computed by hand: TTL, stale, unknown, too early, duplicates, order."
    p = make_project(tmp_path)
    repo = example_repo(p / "repo", customers=1, days=1, ttl_days=2)   # its definitions; the statistics are written by hand here
    t = lambda s: pd.Timestamp(s, tz=UTC)
    pd.DataFrame({"customer_id": [1, 1, 1, 2, 3], "event_timestamp": [t("2024-01-01"), t("2024-01-05"), t("2024-01-05"), t("2024-01-01"), t("2024-01-10")],
                  "created": [t("2024-01-01"), t("2024-01-05"), t("2024-01-06"), t("2024-01-01"), t("2024-01-10")],
                  "trips": [10, 20, 21, 30, 40], "rating": [4.0, 4.5, 4.6, 3.0, 2.0]}).to_parquet(repo / "data" / "customer_stats.parquet", index=False)
    apply(Settings(feature_repo=str(repo)))
    ent = pd.DataFrame({"customer_id": [2, 1, 999, 3, 1, 1, 1],
                        "event_timestamp": ["2024-01-05T12:00:00", "2024-01-05T12:00:00", "2024-01-05T12:00:00", "2024-01-05T12:00:00",
                                            "2024-01-02T00:00:00", "2024-01-05T12:00:00", "2024-01-03T00:00:00"],
                        "plan": ["a", "b", "c", "d", "e", "f", "g"], "churned": ["yes", "no", "no", "yes", "no", "yes", "no"]})
    ent.to_csv(p / "entities.csv", index=False)
    ok(mlops_nb("run", "features", "-p", "entities", "entities.csv", "-p", "feature_service", "churn_v1", "-p", "output", "data/training.parquet",
                cwd=p, env=env_of(p), timeout=600))
    got = pd.read_parquet(p / "data" / "training.parquet")
    # by hand: customer 2's value (01-01) is older than the 2-day TTL at 01-05 12:00; 999 has none; 3's first is after 01-05;
    # customer 1 at 01-05 12:00 gets the 01-05 row created last (21); at 01-02 and at exactly 01-01 + 2 days, the 01-01 row (10)
    want = pd.DataFrame({"plan": list("abcdefg"), "churned": ent.churned,
                         "trips": [np.nan, 21, np.nan, np.nan, 10, 21, 10], "rating": [np.nan, 4.6, np.nan, np.nan, 4.0, 4.6, 4.0]})
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    lin = read_lineage(p / "data" / "training.parquet")
    assert (lin["feature_service"], lin["refs"], lin["keys"], lin["ttl"]) == ("churn_v1", ["customer_stats:trips", "customer_stats:rating"], ["customer_id"], {"customer_stats": 172800.0})
    assert lin["rows_without_features"] == 3 and lin["entity_rows"] == 7
    res = json.loads((p / "workspace" / "results" / "features.json").read_text())
    assert res["status"] == "succeeded" and res["rows"] == 7 and res["entity_fingerprint"] == lin["entity_fingerprint"]
    assert res["rows_without_features"] == 3   # kept, with missing features; the executed notebook names their keys
    assert "3 of 7 entity rows have no feature value within the TTL" in Path(res["notebook"]).read_text()
    # a missing service is one clear line, and nothing is written
    r = mlops_nb("run", "features", "-p", "entities", "entities.csv", "-p", "feature_service", "nope", "-p", "output", "data/other.parquet", cwd=p, env=env_of(p), timeout=600)
    assert r.returncode == 1 and "nope" in r.stderr and not (p / "data" / "other.parquet").exists(), r.stderr[-2000:]


def post(port, path, body, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, json.loads(data) if data else None, dict(r.getheaders())


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10); c.request("GET", "/metrics")
    text = c.getresponse().read().decode(); c.close()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))


def test_train_validate_and_serve_from_entity_keys(tmp_path, clean_env):
    "Trained and validated on the store's training set; served with keys only: the same predictions as the full rows, logged with the features."
    p = make_project(tmp_path)
    repo = example_repo(p / "repo", customers=200, days=10)   # statistics up to today, midnight UTC
    s = Settings(feature_repo=str(repo))
    apply(s)
    example_entities(repo, 800).to_parquet(p / "entities.parquet", index=False)
    e = env_of(p)
    ok(mlops_nb("run", "features", "-p", "entities", "entities.parquet", "-p", "feature_service", "churn_v1", "-p", "output", "data/training.parquet", cwd=p, env=e, timeout=600))
    ok(mlops_nb("run", "train", cwd=p, env=e, timeout=600)); ok(mlops_nb("run", "validate", cwd=p, env=e, timeout=600))
    uri = f"sqlite:///{p / 'workspace' / 'mlflow.db'}"
    from mlflow import MlflowClient
    mv = MlflowClient(uri, registry_uri=uri).get_model_version_by_alias("churn", "champion")
    assert mv.tags["feature_service"] == "churn_v1" and json.loads(mv.tags["feature_refs"]) == ["customer_stats:trips", "customer_stats:rating"]
    assert json.loads(mv.tags["entity_keys"]) == ["customer_id"] and mv.tags["entity_fingerprint"]
    # the online store as it is after serving for a while: every customer's latest statistics (a customer whose statistics
    # stopped days ago keeps its old value there), then what arrived since, as the ct tick refreshes it
    start, end = datetime.now(UTC) - pd.Timedelta(days=30), datetime.now(UTC) - pd.Timedelta(days=1)
    feast_cli(s, "materialize", start.replace(tzinfo=None, microsecond=0).isoformat(), end.replace(tzinfo=None, microsecond=0).isoformat())
    materialize(s)

    fport, port = free_port(), free_port()
    feast = subprocess.Popen([str(FEAST.parent / "feast"), "serve", "-h", "127.0.0.1", "-p", str(fport), "--no-access-log", "--max-requests", "0"],
                             cwd=repo, stdout=open(tmp_path / "feast.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", fport, timeout=2); c.request("GET", "/health")
                if c.getresponse().status == 200: break
            except OSError: pass
            assert feast.poll() is None and time.monotonic() < deadline, (tmp_path / "feast.log").read_text()[-2000:]
            time.sleep(0.3)
        fresh = [c for c in range(1, 60) if c % 10 and c % 25][:20]   # statistics up to today: within the TTL
        st, online, _ = post(fport, "/get-online-features", {"features": ["customer_stats:trips", "customer_stats:rating"], "entities": {"customer_id": fresh}})
        assert st == 200
        names = online["metadata"]["feature_names"]; val = {n: online["results"][i]["values"] for i, n in enumerate(names)}
        plans = ["basic" if c % 2 else "plus" for c in fresh]
        se = env_of(p, MLOPS_NB_FEATURE_SERVER=f"http://127.0.0.1:{fport}", MLOPS_NB_FEATURE_TIMEOUT="2")
        with serving([BIN / "mlops-nb", "serve", "--port", port], f"http://127.0.0.1:{port}/ready", tmp_path / "serve.log", cwd=p, env=se):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10); c.request("GET", "/metadata"); meta = json.loads(c.getresponse().read())
            assert meta["feature_store"] == {"feature_server": f"http://127.0.0.1:{fport}", "features": ["customer_stats:trips", "customer_stats:rating"],
                                             "entity_keys": ["customer_id"], "timeout": 2.0}, meta
            st, keyed, _ = post(port, "/invocations", {"dataframe_records": [{"customer_id": c, "plan": pl} for c, pl in zip(fresh, plans)]})
            assert st == 200, keyed
            full = {"dataframe_split": {"columns": ["plan", "trips", "rating"], "data": [[pl, val["trips"][i], val["rating"][i]] for i, pl in enumerate(plans)]}}
            st, whole, _ = post(port, "/invocations", full)
            assert st == 200 and keyed["predictions"] == whole["predictions"] and len(set(keyed["predictions"])) >= 2   # the features matter
            # an unknown key is the client's: 422 naming it; no prediction
            st, body, _ = post(port, "/invocations", {"dataframe_records": [{"customer_id": 1, "plan": "basic"}, {"customer_id": 25, "plan": "basic"}]})
            assert st == 422 and "unknown entity customer_id=25 in row 1" in body["message"], body
            # a customer whose statistics stopped days ago: the online value is older than the TTL, scored as missing (as in training), said so
            st, body, h = post(port, "/invocations", {"dataframe_records": [{"customer_id": 10, "plan": "basic"}]})
            assert st == 200 and "older than its TTL" in h.get("x-warnings", ""), (st, body, h)
            st, missing, _ = post(port, "/invocations", {"dataframe_records": [{"plan": "basic", "trips": None, "rating": None}]})
            assert st == 200 and body["predictions"] == missing["predictions"]
            # a key that is no key of the entity's type (INT64) is the client's too; a number sent as text is a key
            st, body, _ = post(port, "/invocations", {"dataframe_records": [{"customer_id": "abc", "plan": "basic"}]})
            assert st == 422 and "entity key 'customer_id' in row 0 is 'abc': give a whole number" in body["message"], body
            st, text, _ = post(port, "/invocations", {"dataframe_records": [{"customer_id": str(c), "plan": pl} for c, pl in zip(fresh, plans)]})
            assert st == 200 and text["predictions"] == keyed["predictions"]
            assert metric(port, 'mlops_nb_feature_lookups_total{outcome="ok"}') == 3
            assert metric(port, 'mlops_nb_feature_lookups_total{outcome="unknown_key"}') == 1
            # a challenger on the same feature service, answering as a canary and scored as a shadow: each version
            # reads its own features by the keys (a second service, with its own prediction log)
            ok(mlops_nb("run", "train", "-p", "estimator", "logistic_regression", cwd=p, env=e, timeout=600))   # version 2, the challenger
            lport, live = free_port(), f"sqlite:///{tmp_path / 'live.db'}"
            for knobs, answers in (({"MLOPS_NB_CANARY": "1"}, "2"), ({"MLOPS_NB_SHADOW": "challenger"}, "1")):
                le = se | {"MLOPS_NB_PREDICTION_STORE": live, **knobs}
                with serving([BIN / "mlops-nb", "serve", "--port", lport], f"http://127.0.0.1:{lport}/ready", tmp_path / f"live-{answers}.log", cwd=p, env=le):
                    st, ck, h = post(lport, "/invocations", {"dataframe_records": [{"customer_id": c, "plan": pl} for c, pl in zip(fresh, plans)]})
                    assert st == 200 and h.get("x-model-version") == answers, (st, ck, h)
                    st, cw, h = post(lport, "/invocations", full)
                    assert st == 200 and h.get("x-model-version") == answers and ck["predictions"] == cw["predictions"], (ck, cw, h)
                    if answers == "1": assert ck["predictions"] == keyed["predictions"]
                    deadline = time.monotonic() + 30   # the shadow scores off the request path
                    while knobs.get("MLOPS_NB_SHADOW") and metric(lport, 'mlops_nb_version_scorings_total{outcome="ok",role="shadow",version="2"}') < 2:
                        assert time.monotonic() < deadline, "the shadow did not score both requests"
                        time.sleep(0.2)
                    assert metric(lport, 'mlops_nb_feature_lookups_total{outcome="ok"}') == 1   # the canary's own; the shadow scores the answer's features
            from mlops_nb.predlog import read_live
            shadowed = read_live(live, "churn")
            assert set(zip(shadowed["version"].astype(str), shadowed["role"])) == {("2", "answer"), ("1", "answer"), ("2", "shadow")}, shadowed
            # the feature server stops: a 503 naming it, counted; never a prediction without the features
            os.killpg(feast.pid, signal.SIGTERM); feast.wait(30)
            st, body, _ = post(port, "/invocations", {"dataframe_records": [{"customer_id": fresh[0], "plan": "basic"}]})
            assert st == 503 and f"the feature server at http://127.0.0.1:{fport} did not answer" in body["message"], body
            assert metric(port, 'mlops_nb_feature_lookups_total{outcome="unavailable"}') == 1
            # the full rows still score: the features sent need no lookup
            st, again, _ = post(port, "/invocations", full)
            assert st == 200 and again["predictions"] == whole["predictions"]
        # without a feature server, keys alone are refused, naming what to do (never scored with every feature missing)
        with serving([BIN / "mlops-nb", "serve", "--port", port], f"http://127.0.0.1:{port}/ready", tmp_path / "serve2.log", cwd=p, env=e):
            st, body, _ = post(port, "/invocations", {"dataframe_records": [{"customer_id": fresh[0], "plan": "basic"}]})
            assert st == 422 and "missing column 'trips'" in body["message"] and "MLOPS_NB_FEATURE_SERVER" in body["message"], body
        from mlops_nb.predlog import read_log
        log = pd.concat(read_log(f"sqlite:///{p / 'workspace' / 'predictions.db'}"))
        keyed_rows = log.head(len(fresh))   # the first request: logged with the features it was scored with
        assert keyed_rows["trips"].tolist() == val["trips"] and keyed_rows["rating"].tolist() == pytest.approx(val["rating"])
        # freshness: the ct tick refreshes the online store first (materialize = true); the monitor compares the served
        # features, as the service fetched them, with the training set's reference like any input
        ok(mlops_nb("ct", cwd=p, env=env_of(p, MLOPS_NB_MATERIALIZE="true", MLOPS_NB_CT_TRIGGERS="demand"), timeout=600))
        tick = json.loads((p / "workspace" / "results" / "ct.json").read_text())
        assert tick["materialize"]["status"] == "ok", tick
        ok(mlops_nb("run", "monitor", cwd=p, env=e, timeout=600))
        mon = json.loads((p / "workspace" / "results" / "monitor.json").read_text())
        assert mon["status"] == "succeeded" and mon["rows"] == 4 * len(fresh) + 2, mon   # every row answered: keyed, full, stale, missing, as text, full again
        assert set(mon["psi"]) == {"plan", "trips", "rating"}, mon["psi"]
        # continuous training from the feature store: more labelled events in the entity frame fire the data trigger; the
        # tick rebuilds the training set from them with the champion's feature service, then trains and validates on it
        # an entity frame without its event times: the tick stops naming the column; the training set and the champion stay
        before = (p / "data" / "training.parquet").read_bytes()
        example_entities(repo, 50).drop(columns="event_timestamp").to_parquet(p / "bad.parquet", index=False)
        r = mlops_nb("ct", cwd=p, env=env_of(p, MLOPS_NB_CT_ENTITIES="bad.parquet", MLOPS_NB_CT_TRIGGERS="data"), timeout=600)
        assert r.returncode == 1 and "has no column 'event_timestamp'" in r.stderr, (r.returncode, r.stdout[-1500:], r.stderr[-1500:])
        tick = json.loads((p / "workspace" / "results" / "ct.json").read_text())   # the data trigger could not read it: recorded
        assert tick["status"] == "failed" and tick["stage"] == "data" and tick["fired"] == [], tick
        r = mlops_nb("ct", "--now", cwd=p, env=env_of(p, MLOPS_NB_CT_ENTITIES="bad.parquet", MLOPS_NB_CT_TRIGGERS="demand"), timeout=600)
        tick = json.loads((p / "workspace" / "results" / "ct.json").read_text())   # asked to retrain: the features pipeline refuses it
        assert r.returncode == 1 and tick["stage"] == "features" and "has no column 'event_timestamp'" in tick["error"], (r.stderr[-1500:], tick)
        assert (p / "data" / "training.parquet").read_bytes() == before
        assert MlflowClient(uri, registry_uri=uri).get_model_version_by_alias("churn", "champion").version == mv.version
        example_entities(repo, 1000, seed=2).to_parquet(p / "entities.parquet", index=False)
        # (--now: the failed features run above holds other triggers back for an hour, RETRY_AFTER)
        ok(mlops_nb("ct", "--now", cwd=p, env=env_of(p, MLOPS_NB_CT_ENTITIES="entities.parquet", MLOPS_NB_CT_TRIGGERS="demand, data"), timeout=900))
        tick = json.loads((p / "workspace" / "results" / "ct.json").read_text())
        data = next(t for t in tick["triggers"] if t["name"] == "data")
        assert tick["fired"] == ["demand", "data"] and data["fired"] and "entity frame changed" in data["reason"], tick
        assert tick["features"]["status"] == "ok" and tick["features"]["rows"] == 1000 and tick["status"] in ("promoted", "rejected"), tick
        new = MlflowClient(uri, registry_uri=uri).get_model_version("churn", tick["model_version"])
        assert new.tags["feature_service"] == "churn_v1" and new.tags["entity_fingerprint"] == tick["features"]["entity_fingerprint"] != mv.tags["entity_fingerprint"]
        assert int(new.tags["data_rows"]) == 1000 and new.tags["ct_triggers"] == "demand,data"
        from mlops_nb.featurestore import entity_fingerprint   # what the data trigger computes is what the version records
        assert entity_fingerprint(Settings(), str(p / "entities.parquet")) == new.tags["entity_fingerprint"]
        # the next tick, the entity frame as it was: no second retraining, whether the gate promoted the version or refused it
        ok(mlops_nb("ct", cwd=p, env=env_of(p, MLOPS_NB_CT_ENTITIES="entities.parquet", MLOPS_NB_CT_TRIGGERS="data"), timeout=600))
        again = json.loads((p / "workspace" / "results" / "ct.json").read_text())
        why = "entity frame unchanged" if tick["status"] == "promoted" else "but the version trained on it was refused"
        assert again["status"] == "idle" and again["fired"] == [] and why in again["triggers"][0]["reason"], (tick["status"], again)
    finally:
        if feast.poll() is None: os.killpg(feast.pid, signal.SIGKILL); feast.wait()


def test_new_project_with_an_example_feature_repository(tmp_path, clean_env):
    "`mlops-nb new --feast`: an example repository and entity frame; applied, the features pipeline builds the project's training set."
    p = tmp_path / "shop"
    ok(mlops_nb("new", "--feast", p, cwd=tmp_path))
    assert (p / "feature_repo" / "feature_store.yaml").is_file() and "feature_repo = feature_repo" in (p / "settings.ini").read_text()
    apply(Settings(feature_repo=str(p / "feature_repo")))
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "MLFLOW_"))}
    ok(mlops_nb("run", "features", "-p", "entities", "data/entities.parquet", "-p", "feature_service", "churn_v1", "-p", "output", "data/training.parquet",
                cwd=p, env=e, timeout=600))
    got, ent = pd.read_parquet(p / "data" / "training.parquet"), pd.read_parquet(p / "data" / "entities.parquet")
    assert len(got) == len(ent) and list(got.columns) == ["plan", "churned", "trips", "rating"] and got["trips"].notna().mean() > 0.5
