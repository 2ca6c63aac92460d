"""Live champion and challenger as real uvicorn processes over HTTP on the demo's real MLflow registry: shadow, canary,
the gate's live check, and a baking champion rolled back by a real `mlops-nb ct` tick while clients keep requesting."""
import http.client, json, queue, re, signal, sqlite3, threading, time

import pytest

from conftest import BIN, mlops_nb
from test_serve import base_env, call, demo, free_port, start, stop   # demo: a module's own demo project (fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(demo):
    import pandas as pd
    df = pd.read_csv(demo / "data" / "breast_cancer.csv")
    return df.drop(columns="diagnosis"), df["diagnosis"]


def aliases(demo):
    with sqlite3.connect(demo / "workspace" / "mlflow.db") as con:
        return {a: str(v) for a, v in con.execute("select alias, version from registered_model_aliases where name = 'breast_cancer'")}


def service(demo, tmp_path, name, **env):
    "A service of the champion with its own prediction log `tmp_path/NAME.db`; returns (process, port, store URL)."
    port, store = free_port(), f"sqlite:///{tmp_path / (name + '.db')}"
    e = base_env(demo, MLOPS_NB_PREDICTION_STORE=store, MLOPS_NB_POLL_SECONDS=0.5, **env)
    return start([BIN / "mlops-nb", "serve", "--port", port], demo, e, port, open(tmp_path / f"{name}.log", "w+")), port, store


def requests(port, bodies, path="/invocations", headers=lambda i: {}, clients=8):
    "Send `bodies` from `clients` threads, one connection each; the answers in order: (status, headers, json)."
    out, todo = [None] * len(bodies), queue.Queue()
    for i in range(len(bodies)): todo.put(i)

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            try: i = todo.get_nowait()
            except queue.Empty: return
            c.request("POST", path, json.dumps(bodies[i]), {"Content-Type": "application/json", **headers(i)})
            r = c.getresponse(); text = r.read()
            out[i] = (r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(text))
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join(120)
    return out


def one_row_bodies(X, n):
    return [{"dataframe_records": X.iloc[[i % len(X)]].to_dict(orient="records")} for i in range(n)]


def live_rows(store):
    from mlops_nb.predlog import read_live
    return read_live(store, "breast_cancer")


def prom(port):
    "The /metrics samples as {(name, labels): value}."
    text = call(port, "GET", "/metrics")[1]
    out = {}
    for m in re.finditer(r'^(\w+)(?:\{([^}]*)\})? (\S+)$', text, re.M):
        out[(m[1], tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))))] = float(m[3])
    return out


def test_shadow_changes_nothing_for_clients_and_logs_both_versions(demo, data, tmp_path):
    "Shadow on and off give the client identical answers; every request has both versions' predictions under its id, labels join both, SIGTERM flushes both."
    X, y = data
    champion, challenger = aliases(demo)["champion"], aliases(demo)["challenger"]
    bodies = one_row_bodies(X, 300)
    plain, pport, _ = service(demo, tmp_path, "plain")
    shadowed, sport, store = service(demo, tmp_path, "shadow", MLOPS_NB_SHADOW="challenger")
    try:
        a = requests(pport, bodies, headers=lambda i: {"X-Request-ID": f"r{i}"})
        b = requests(sport, bodies, headers=lambda i: {"X-Request-ID": f"r{i}"})
        assert [r[0] for r in b] == [200] * 300
        assert [r[2] for r in a] == [r[2] for r in b]                      # the same answers, body for body
        assert {r[1]["x-model-version"] for r in b} == {champion}          # answered by the champion; the shadow is not returned
        md = call(sport, "GET", "/metadata")[1]["live"]
        assert md["candidate_version"] == challenger and md["shadow"] is True
        s, f = call(sport, "POST", "/feedback", {"feedback": [{"request_id": f"r{i}", "label": y.iloc[i % len(y)]} for i in range(300)]})
        assert (s, f) == (200, {"accepted": 300})
        m = prom(sport)
        assert m[("mlops_nb_version_scorings_total", (("outcome", "ok"), ("role", "answer"), ("version", champion)))] == 300
    finally:
        stop(plain)
        code = stop(shadowed)   # at once: shadow scorings and log rows are still queued
    assert code in (0, -signal.SIGTERM)
    live = live_rows(store)
    got = live.groupby(["version", "role"])["request_id"].nunique().to_dict()
    assert got == {(champion, "answer"): 300, (challenger, "shadow"): 300}, got
    assert live["error"].isna().all()
    shadow = live[live.role == "shadow"].set_index("request_id")["prediction"]
    assert shadow.nunique() == 1   # version 3 is the dummy: one class for every row
    assert live["label"].notna().sum() == 600   # every label joins both versions' predictions
    # the monitor reports both versions side by side on the same requests
    mon = mlops_nb("run", "monitor", "--json", "-p", "monitor_window", "150", cwd=demo, timeout=600,
                   env=base_env(demo, MLOPS_NB_PREDICTION_STORE=store))
    assert mon.returncode == 0, mon.stdout[-3000:] + mon.stderr[-3000:]
    res = json.loads(mon.stdout.strip().splitlines()[-1])
    c = res["live"][challenger]
    assert c["requests"] == 300 and c["candidate"]["labelled"] == 300 and c["champion"]["version"] == champion
    assert c["candidate"]["metric"] < c["champion"]["metric"] and 0 < c["agreement"] < 1, c   # the dummy is worse, and differs
    page = open(res["report"]).read()
    assert "Live evaluation: champion and candidate on the same requests" in page and page.count("rows 150-299") >= 2


def test_canary_answers_its_share_sticky_per_key(demo, data, tmp_path):
    "canary = 0.3: about 30% of 1,000 requests are answered by the challenger, each key sticks to one version, and /metrics adds up."
    X, _ = data
    champion, challenger = aliases(demo)["champion"], aliases(demo)["challenger"]
    p, port, store = service(demo, tmp_path, "canary", MLOPS_NB_CANARY=0.3)
    try:
        got = requests(port, one_row_bodies(X, 1000), headers=lambda i: {"X-Request-Key": f"client-{i}"})
        versions = [r[1]["x-model-version"] for r in got]
        assert [r[0] for r in got] == [200] * 1000 and set(versions) == {champion, challenger}
        # each key is a fair coin of weight 0.3 (a hash): the count is binomial(1000, 0.3), sd 14.5; +-60 is 4 sd, a 1-in-15,000 miss
        assert 240 <= versions.count(challenger) <= 360, versions.count(challenger)
        again = requests(port, one_row_bodies(X, 100), headers=lambda i: {"X-Request-Key": f"client-{i % 10}"})
        for k in range(10): assert {again[i][1]["x-model-version"] for i in range(k, 100, 10)} == {versions[k]}   # sticky
        s, body = call(port, "POST", "/predict", {"records": X.head(1).to_dict(orient="records")}, {"X-Request-Key": "client-0"})
        assert s == 200 and body["model_version"] == versions[0]   # /predict's body names the version that answered
        m = prom(port)
        answered = {v: m.get(("mlops_nb_version_scorings_total", (("outcome", "ok"), ("role", "answer"), ("version", v))), 0) for v in (champion, challenger)}
        assert sum(answered.values()) == m[("mlops_nb_requests_total", (("route", "/invocations"), ("status", "200")))] + 1 == 1101
        assert answered[challenger] == versions.count(challenger) + [again[i][1]["x-model-version"] for i in range(100)].count(challenger) + (versions[0] == challenger)
        assert m[("mlops_nb_canary_share", ())] == 0.3 and m[("mlops_nb_candidate_version", ())] == float(challenger)
    finally: stop(p)
    live = live_rows(store)
    assert live.groupby("version")["request_id"].nunique().sum() == 1101 and set(live.role) == {"answer"}


def test_gate_refuses_a_challenger_worse_on_live_labels(demo, data, tmp_path):
    "A logistic regression passes the gate offline; scored in shadow and labelled live where it disagrees with the champion, it is refused."
    X, y = data
    env = base_env(demo)
    assert mlops_nb("run", "train", "-p", "estimator", "logistic_regression", "-p", "seed", "7", cwd=demo, env=env).returncode == 0
    champion, challenger = aliases(demo)["champion"], aliases(demo)["challenger"]
    p, port, store = service(demo, tmp_path, "gate", MLOPS_NB_SHADOW="challenger")
    try:
        got = requests(port, one_row_bodies(X, len(X)), headers=lambda i: {"X-Request-ID": f"g{i}"})
        assert all(r[0] == 200 for r in got)
        time.sleep(1.5)   # the shadow and the log's writer
        live = live_rows(store).pivot_table(index="request_id", columns="version", values="prediction", aggfunc="first")
        differ = list(live.index[live[champion] != live[challenger]])
        assert differ, "the two models agree on every row: nothing to judge live"
        same = [r for r in live.index if r not in set(differ)][:max(0, 30 - len(differ))]
        # live labels that agree with the champion where the two differ: the challenger is worse by len(differ) / labelled rows
        fb = [{"request_id": r, "label": live.loc[r, champion]} for r in differ + same]
        assert call(port, "POST", "/feedback", {"feedback": fb})[0] == 200
    finally: stop(p)
    v = mlops_nb("run", "validate", "--json", cwd=demo, timeout=600,
                 env={**env, "MLOPS_NB_PREDICTION_STORE": store, "MLOPS_NB_GATE_LIVE_MIN_ROWS": "20", "MLOPS_NB_MONITOR_MIN_ROWS": "20"})
    assert v.returncode != 0, v.stdout[-3000:]
    res = json.loads(v.stdout.strip().splitlines()[-1])
    checks = {c["name"]: c for c in res["verdict"]["checks"]}
    assert [n for n, c in checks.items() if not c["passed"]] == ["live"], checks   # offline it passed every check
    assert f"on {len(X)} live requests both scored" in checks["live"]["detail"] and "live accuracy" in checks["live"]["detail"], checks["live"]
    assert aliases(demo)["champion"] == champion


def test_a_champion_worse_live_is_rolled_back_under_load(demo, data, tmp_path):
    "Promote the dummy; it bakes with the previous champion in shadow; a ct tick finds it worse on live labels and rolls back while 8 clients keep requesting: none fails."
    X, y = data
    previous = aliases(demo)["champion"]
    assert mlops_nb("promote", "breast_cancer", "3", "--force", "--reason", "try the dummy", cwd=demo, env=base_env(demo)).returncode == 0
    p, port, store = service(demo, tmp_path, "bake", MLOPS_NB_SHADOW=previous)
    tick_env = base_env(demo, MLOPS_NB_PREDICTION_STORE=store, MLOPS_NB_BAKE_FOR="100000", MLOPS_NB_CT_TRIGGERS="demand",
                        MLOPS_NB_MONITOR_EVERY="", MLOPS_NB_GATE_LIVE_MIN_ROWS="100", MLOPS_NB_MONITOR_MIN_ROWS="100")
    seen, failures, stop_, ts = [], [], threading.Event(), []

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = k
        while not stop_.is_set():
            c.request("POST", "/invocations", json.dumps(one_row_bodies(X, i + 1)[-1]), {"Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            (seen.append(r.getheader("X-Model-Version")) if r.status == 200 else failures.append(r.status)); i += 8
    try:
        first = mlops_nb("ct", cwd=demo, env=tick_env)   # no live labels yet: baking, nothing rolled back
        assert first.returncode == 0 and "baking version 3" in first.stdout and "ROLLED BACK" not in first.stdout, first.stdout
        got = requests(port, one_row_bodies(X, 400), headers=lambda i: {"X-Request-ID": f"b{i}"})
        assert {r[1]["x-model-version"] for r in got} == {"3"}
        fb = [{"request_id": f"b{i}", "label": y.iloc[i % len(y)]} for i in range(400)]
        assert call(port, "POST", "/feedback", {"feedback": fb})[0] == 200
        time.sleep(1.5)
        ts += [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts: t.start()
        time.sleep(1)
        tick = mlops_nb("ct", cwd=demo, env=tick_env)
        assert tick.returncode == 0 and "ROLLED BACK" in tick.stdout, tick.stdout + tick.stderr
        t0 = time.time()
        while time.time() - t0 < 30 and call(port, "GET", "/metadata")[1]["model_version"] != previous: time.sleep(0.1)
        time.sleep(1)
    finally:
        stop_.set()
        for t in ts: t.join(60)
        stop(p)
    assert failures == [] and "3" in seen and seen[-1] == previous, (failures[:5], seen[-3:])
    assert aliases(demo)["champion"] == previous
    res = json.loads((demo / "workspace" / "results" / "ct.json").read_text())
    assert res["status"] == "rolled_back" and res["champion_after"] == previous and "live accuracy" in res["reasons"][0], res
    st = mlops_nb("status", cwd=demo, env=base_env(demo))
    assert re.search(rf"rollback\s+v3 -> v{previous}\s+by mlops-nb ct", st.stdout) and "rolled back: live accuracy" in st.stdout, st.stdout
