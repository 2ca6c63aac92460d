"""The model service as a real uvicorn process on loopback, called over HTTP, side by side with `mlflow models serve`."""
import http.client, json, os, re, signal, socket, sqlite3, statistics, subprocess, sys, threading, time
from pathlib import Path

import pytest

from conftest import BIN, relocated_copy, run


KEY = "k3y-not-in-logs"
HEAVY = ("papermill", "optuna", "matplotlib", "jupyter_client", "ipykernel", "nbformat", "mlflow", "IPython")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def base_env(project, **extra):
    "The environment without MLFLOW_* / MLOPS_NB_* keys, plus `extra`."
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"   # mlflow models serve runs `uvicorn` from PATH
    env.update({k: str(v) for k, v in extra.items()})
    return env


def call(port, method, path, body=None, headers=None, raw=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse(); text = r.read(); c.close()
    try: return r.status, json.loads(text)
    except ValueError: return r.status, text.decode()


def start(cmd, project, env, port, log, timeout=90):
    p = subprocess.Popen([str(c) for c in cmd], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if p.poll() is not None: raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {open(log.name).read()[-2000:]}")
        try:
            if call(port, "GET", "/ping", timeout=2)[0] == 200: return p
        except OSError: pass
        time.sleep(0.1)
    p.kill(); raise RuntimeError(f"{cmd} not ready in {timeout}s")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try: p.wait(30)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
    return p.returncode


@pytest.fixture(scope="module")
def demo(demo_template, tmp_path_factory):
    "This module's own copy of the demo project: breast_cancer versions 1 (logistic regression), 2 (gradient boosting) and 3 (a dummy challenger the gate refused)."
    return relocated_copy(demo_template, tmp_path_factory.mktemp("serve") / "demo")


@pytest.fixture(scope="module")
def rows(demo):
    import pandas as pd
    return pd.read_csv(demo / "data" / "breast_cancer.csv").drop(columns="diagnosis")


@pytest.fixture(scope="module")
def ours(demo, tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("logs") / "ours.log", "w+")
    env = base_env(demo, MLOPS_NB_API_KEY=KEY, MLOPS_NB_MAX_ROWS=1000, MLOPS_NB_MAX_BODY_MB=1, MLOPS_NB_POLL_SECONDS=0.5,
                   MLFLOW_TRACKING_URI=f"sqlite:///{demo}/workspace/mlflow.db")
    p = start([BIN / "mlops-nb", "serve", "--port", port], demo, env, port, log)
    yield port, log
    stop(p)


@pytest.fixture(scope="module")
def theirs(demo, tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("logs") / "mlflow.log", "w+")
    env = base_env(demo, MLFLOW_TRACKING_URI=f"sqlite:///{demo}/workspace/mlflow.db")
    p = start([BIN / "mlflow", "models", "serve", "-m", "models:/breast_cancer@champion", "--env-manager", "local", "-p", port], demo, env, port, log, 180)
    yield port
    stop(p)


H = {"X-API-Key": KEY}


def champion(demo):
    from mlflow import MlflowClient
    uri = f"sqlite:///{demo}/workspace/mlflow.db"
    return MlflowClient(uri, registry_uri=uri), str(MlflowClient(uri, registry_uri=uri).get_model_version_by_alias("breast_cancer", "champion").version)


def test_import_is_light():
    code = "import sys, mlops_nb, mlops_nb.serve; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing mlops_nb.serve loaded {out}"


def test_same_predictions_as_mlflow_models_serve(ours, theirs, rows, demo):
    port, _ = ours
    X = rows.head(7)
    payloads = [{"dataframe_split": json.loads(X.to_json(orient="split", index=False))},
                {"dataframe_records": X.to_dict(orient="records")}, {"instances": X.to_dict(orient="records")}]
    for body in payloads:
        s1, a = call(port, "POST", "/invocations", body, H)
        s2, b = call(theirs, "POST", "/invocations", body)
        assert (s1, s2) == (200, 200), (a, b)
        assert a == b and len(a["predictions"]) == 7
    s, r = call(port, "POST", "/predict", {"records": X.head(2).to_dict(orient="records")}, H)
    assert s == 200 and r["model_name"] == "breast_cancer" and r["model_version"] == champion(demo)[1] and len(r["request_id"]) == 32
    assert r["predictions"] == b["predictions"][:2]


def test_bad_inputs_are_4xx_naming_the_field(ours, rows):
    port, _ = ours
    rec = rows.head(1).to_dict(orient="records")[0]
    missing = {k: v for k, v in rec.items() if k != "mean radius"}
    cases = [({"records": [missing]}, None, 422, "mean radius"),
             ({"records": [{**rec, "mean area": "big"}]}, None, 422, "mean area"),
             ({"dataframe_split": {"columns": list(rec), "data": [[*list(rec.values())[:-1], "x"]]}}, None, 422, list(rec)[-1]),
             (None, b"", 422, "body"),
             (None, b"{not json", 400, "body"),
             ({"records": []}, None, 422, "records"),
             ({"records": [rec] * 1001}, None, 422, "records"),   # over max_rows: a value the schema refuses (maxItems)
             (None, b'{"records": [' + b",".join([json.dumps(rec).encode()] * 4000) + b"]}", 413, "body"),
             ({"dataframe_split": {"columns": ["a"]}}, None, 422, "dataframe_split"),
             ({"rows": [rec]}, None, 422, "body")]
    for body, raw, status, field in cases:
        s, r = call(port, "POST", "/invocations", body, H, raw=raw)
        assert s == status and r["field"] == field and field in r["message"] + r["field"], (field, s, r)
    s, r = call(port, "POST", "/feedback", {"feedback": [{"row": 0, "label": "x"}]}, H)
    assert s == 422 and r["field"] == "feedback[0].request_id"


def test_auth_and_no_secrets(ours, rows):
    port, log = ours
    body = {"records": rows.head(1).to_dict(orient="records")}
    assert call(port, "POST", "/predict", body)[0] == 401
    assert call(port, "POST", "/predict", body, {"X-API-Key": "wrong"})[0] == 401
    assert call(port, "POST", "/predict", body, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert call(port, "GET", "/metadata")[0] == 401
    assert call(port, "GET", "/health")[0] == 200 and call(port, "GET", "/ready")[0] == 200
    s, meta = call(port, "GET", "/metadata", headers=H)
    assert s == 200 and meta["model_name"] == "breast_cancer" and meta["alias"] == "champion"
    assert meta["input_schema"][0] == {"name": "mean radius", "type": "double", "required": True}
    assert meta["lineage"]["data_fingerprint"]
    s, m = call(port, "GET", "/metrics")
    assert 'mlops_nb_requests_total{route="/predict",status="401"}' in m and "mlops_nb_request_seconds_bucket" in m
    log.flush()
    assert KEY not in json.dumps(meta) and KEY not in open(log.name).read()


def test_feedback_joins_request_ids(ours, demo, rows):
    port, _ = ours
    s, r = call(port, "POST", "/predict", {"records": rows.head(3).to_dict(orient="records")}, H)
    s, f = call(port, "POST", "/feedback", {"feedback": [{"request_id": r["request_id"], "row": i, "label": "benign"} for i in range(3)]}, H)
    assert s == 200 and f == {"accepted": 3}
    time.sleep(1.5)
    con = sqlite3.connect(demo / "workspace" / "predictions.db")
    got = con.execute("select count(*) from predictions p join feedback f on f.request_id = p.request_id where p.request_id = ? and f.row < p.n_rows", (r["request_id"],)).fetchone()
    assert got == (3,)


def test_schemathesis_all_checks(ours, tmp_path):
    "Every check of schemathesis over every route of /openapi.json (generated from the model's input schema): no failure."
    port, _ = ours
    p = run([BIN / "schemathesis", "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", "all", "--max-examples", "25",
             "-H", f"X-API-Key: {KEY}", "--generation-deterministic", "--no-color"], cwd=tmp_path, timeout=180)
    assert p.returncode == 0 and "No issues found" in p.stdout, p.stdout[-6000:]
    assert call(port, "GET", "/openapi.json")[0] == 401   # it names the model's columns: behind the key, as /metadata
    s, doc = call(port, "GET", "/openapi.json", headers=H)
    assert s == 200 and call(port, "GET", "/docs")[0] == 200
    body = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert sorted(body) == ["application/json", "application/vnd.apache.parquet", "text/csv"]
    row = body["application/json"]["schema"]["oneOf"][1]["properties"]["dataframe_records"]["items"]
    assert "mean radius" in row["required"] and row["properties"]["mean radius"]["description"] == "double"
    assert {"200", "401", "413", "415", "422", "503"} <= set(doc["paths"]["/invocations"]["post"]["responses"])


def test_champion_switch_under_load(ours, demo, rows):
    "Move champion to the other version while four clients keep requesting: no failure, and the new version is served."
    port, _ = ours
    mc, old = champion(demo)
    new = "1" if old == "2" else "2"
    body = json.dumps({"records": rows.head(5).to_dict(orient="records")})
    seen, failures, stop_ = [], [], threading.Event()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(100000):
            if stop_.is_set(): break
            c.request("POST", "/predict", body, {"Content-Type": "application/json", **H})
            r = c.getresponse(); data = r.read()
            if r.status != 200: failures.append((r.status, data))
            else: seen.append(json.loads(data)["model_version"])

    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts: t.start()
    time.sleep(1)
    mc.set_registered_model_alias("breast_cancer", "champion", new)
    t0 = time.time()
    while time.time() - t0 < 30 and call(port, "GET", "/metadata", headers=H)[1]["model_version"] != new: time.sleep(0.2)
    time.sleep(1)
    stop_.set()
    for t in ts: t.join(60)
    mc.set_registered_model_alias("breast_cancer", "champion", old)
    assert failures == []
    assert old in seen and seen[-1] == new, set(seen)


def test_sigterm_loses_no_prediction(demo, rows, tmp_path):
    "Predictions queued when SIGTERM arrives are written before the process exits."
    port, store = free_port(), tmp_path / "preds.db"
    env = base_env(demo, MLOPS_NB_PREDICTION_STORE=f"sqlite:///{store}", MLOPS_NB_POLL_SECONDS=0)
    log = open(tmp_path / "log", "w+")
    p = start([BIN / "mlops-nb", "serve", "--port", port], demo, env, port, log)
    body = json.dumps({"records": rows.head(10).to_dict(orient="records")})
    ok = []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(40):
            c.request("POST", "/predict", body, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            if r.status == 200: ok.append(1)
    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join(60)
    p.send_signal(signal.SIGTERM)   # at once: the writer (every 0.5 s) still has rows queued
    # uvicorn drains, runs the shutdown (which flushes the log), then re-raises SIGTERM: exit status -15
    assert p.wait(30) in (0, -signal.SIGTERM), open(log.name).read()[-2000:]
    assert len(ok) == 160
    assert sqlite3.connect(store).execute("select count(*), sum(n_rows) from predictions").fetchone() == (160, 160 * 10)


def _serve(demo, tmp_path, *args, **env):
    "A service of the demo's champion (or `--model ...` in `args`) with its own prediction log in `tmp_path`."
    port = free_port()
    e = base_env(demo, MLOPS_NB_PREDICTION_STORE=f"sqlite:///{tmp_path / 'preds.db'}", MLOPS_NB_WORKSPACE=tmp_path / "ws",
                 MLFLOW_TRACKING_URI=f"sqlite:///{demo}/workspace/mlflow.db", **env)
    log = open(tmp_path / f"serve-{port}.log", "w+")
    return port, start([BIN / "mlops-nb", "serve", "--port", port, *args], demo, e, port, log), log


def _probe(port, n, pause=0.05):
    "`n` /health round trips on fresh connections (as a kubelet probes): their latencies in seconds."
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); assert call(port, "GET", "/health", timeout=30)[0] == 200
        out.append(time.perf_counter() - t0); time.sleep(pause)
    return out


@pytest.mark.slow
def test_probes_stay_fast_under_heavy_requests(demo, rows, tmp_path):
    """Eight clients keep sending 10,000-row requests; /health keeps answering about as fast as when idle (scoring runs
    on scoring threads, not on the event loop). Before, the median probe took 848 ms under such load."""
    import pandas as pd
    port, p, log = _serve(demo, tmp_path, MLOPS_NB_LOG_PREDICTIONS="false")
    big = json.dumps({"dataframe_split": json.loads(pd.concat([rows] * 18).head(10000).to_json(orient="split", index=False))})
    idle = statistics.median(_probe(port, 20))
    done, stop_, bad = [], threading.Event(), []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not stop_.is_set():
            c.request("POST", "/invocations", big, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            (done if r.status == 200 else bad).append(r.status)
    ts = [threading.Thread(target=client) for _ in range(8)]
    try:
        for t in ts: t.start()
        time.sleep(2)   # every client has a request in flight
        loaded = _probe(port, 30, 0.1)
    finally:
        stop_.set()
        for t in ts: t.join(120)
        stop(p)
    assert bad == [] and len(done) >= 8, (bad, len(done))
    med = statistics.median(loaded)
    print(f"/health median idle {idle * 1e3:.1f} ms, under load {med * 1e3:.1f} ms (max {max(loaded) * 1e3:.0f} ms), {len(done)} heavy requests")
    # a ratio against the idle probe on this machine, not a wall-clock limit; the event loop shares the GIL with the
    # scoring threads (a switch every 5 ms), so some slow-down remains; blocked, it was several hundred times
    assert med < 25 * max(idle, 0.001), (idle, loaded)
    assert max(loaded) < 1.0, loaded   # a Kubernetes probe with a 1 s timeout never fails


def test_request_ids_echoed_logged_and_on_errors(demo, rows, tmp_path):
    port, p, log = _serve(demo, tmp_path, MLOPS_NB_API_KEY=KEY)
    body = {"records": rows.head(2).to_dict(orient="records")}

    def answer(path, b, headers):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", path, json.dumps(b), {"Content-Type": "application/json", **headers})
        r = c.getresponse(); data = json.loads(r.read()); c.close()
        return r.status, r.getheader("X-Request-ID"), data, r
    try:
        s, rid, data, _ = answer("/predict", body, {**H, "X-Request-ID": "ticket-4711"})
        assert (s, rid, data["request_id"]) == (200, "ticket-4711", "ticket-4711")
        s, rid, data, _ = answer("/invocations", {"records": [{"mean radius": "big"}]}, {**H, "X-Request-ID": "ticket-4712"})
        assert (s, rid) == (422, "ticket-4712"), data
        s, rid, data, r = answer("/predict", body, {"X-Request-ID": "ticket-4713", "Authorization": f"bearer {KEY}"})
        assert (s, rid) == (200, "ticket-4713"), data   # the scheme is case-insensitive
        s, rid, data, r = answer("/predict", body, {"X-Request-ID": "ticket-4714"})
        assert (s, rid, r.getheader("WWW-Authenticate")) == (401, "ticket-4714", 'Bearer realm="mlops_nb"')
        s, rid, data, _ = answer("/predict", body, {**H, "X-Request-ID": "not safe\tto log"})
        assert s == 200 and rid == data["request_id"] and len(rid) == 32   # replaced by one of ours
        s, _, data, _ = answer("/feedback", {"feedback": [{"request_id": "ticket-4711", "row": 1, "label": "benign"}]}, H)
        assert s == 200
        s, rid, data, _ = answer("/predict", body, {**H, "X-Request-ID": "ticket-4711"})   # a client reusing its id
        assert s == 200 and rid == "ticket-4711"
    finally: stop(p)
    con = sqlite3.connect(tmp_path / "preds.db")
    ids = sorted(r[0] for r in con.execute("select request_id from predictions"))
    assert len(ids) == 4 and {"ticket-4711", "ticket-4713"} <= set(ids) and sum(i.startswith("ticket-4711~") for i in ids) == 1, ids
    joined = con.execute("select count(*) from predictions p join feedback f on f.request_id = p.request_id").fetchone()
    assert joined == (1,)   # ticket to log to feedback


@pytest.mark.slow
def test_a_locked_log_loses_nothing(demo, rows, tmp_path):
    """Another process holds the SQLite log locked for 12 s while requests arrive (before, a batch was dropped after
    three tries): every prediction is written once the lock goes, and /metrics showed the failed writes and the pending rows."""
    port, p, log = _serve(demo, tmp_path)
    body = json.dumps({"records": rows.head(4).to_dict(orient="records")})
    def send(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)   # (uvicorn closes a connection idle for 5 s)
        for _ in range(n):
            c.request("POST", "/predict", body, {"Content-Type": "application/json"}); r = c.getresponse(); r.read()
            assert r.status == 200
    try:
        send(5); time.sleep(1)   # the tables exist, five requests written
        lock = sqlite3.connect(tmp_path / "preds.db", timeout=30, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        send(20)
        time.sleep(12)
        m = call(port, "GET", "/metrics")[1]
        assert "mlops_nb_prediction_log_write_failures_total 0.0" not in m, m
        pending = float(re.search(r"^mlops_nb_prediction_log_pending_rows (\S+)", m, re.M)[1])
        assert pending == 80, m   # 20 requests of 4 rows, held
        lock.execute("ROLLBACK"); lock.close()
        send(5)
        t0 = time.time()
        while time.time() - t0 < 30 and "mlops_nb_prediction_log_pending_rows 0.0" not in call(port, "GET", "/metrics")[1]: time.sleep(0.2)
    finally: stop(p)
    assert sqlite3.connect(tmp_path / "preds.db").execute("select count(*), sum(n_rows) from predictions").fetchone() == (30, 120)
    assert "prediction log write failed, rows kept pending" in open(log.name).read()


def test_a_stalled_upload_is_a_408(demo, tmp_path):
    port, p, log = _serve(demo, tmp_path, MLOPS_NB_BODY_SECONDS=1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:   # headers and a tenth of the body, then nothing
            sk.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Request-ID: stalled-1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1000\r\n\r\n" + b" " * 100)
            t0, answer = time.time(), b""
            while b"}" not in answer and (chunk := sk.recv(65536)): answer += chunk   # the headers, then the JSON body
            answer = answer.decode()
        assert time.time() - t0 < 5 and answer.startswith("HTTP/1.1 408"), answer
        assert "x-request-id: stalled-1" in answer.lower() and "body_seconds" in answer, answer
        assert call(port, "GET", "/health")[0] == 200
    finally: stop(p)


def test_a_deleted_alias_and_disconnects_in_metrics(demo, rows, tmp_path):
    "Following an alias that is deleted shows in /metrics (and /metadata), and clears when it is back; a client that hangs up mid-body is a 499, not a 500."
    mc, version = champion(demo)
    mc.set_registered_model_alias("breast_cancer", "watched", version)
    port, p, log = _serve(demo, tmp_path, "--model", "models:/breast_cancer@watched", MLOPS_NB_POLL_SECONDS=0.3)

    def metric(name):
        m = re.search(rf"^{name} (\S+)", call(port, "GET", "/metrics")[1], re.M)
        return float(m[1]) if m else None

    def wait_for(name, value):
        t0 = time.time()
        while time.time() - t0 < 20 and metric(name) != value: time.sleep(0.2)
        return metric(name)
    try:
        assert metric("mlops_nb_follow_error") == 0
        mc.delete_registered_model_alias("breast_cancer", "watched")
        assert wait_for("mlops_nb_follow_error", 1.0) == 1.0
        assert call(port, "GET", "/metadata")[1]["follow_error"]
        mc.set_registered_model_alias("breast_cancer", "watched", version)
        assert wait_for("mlops_nb_follow_error", 0.0) == 0.0
        with socket.create_connection(("127.0.0.1", port)) as sk:   # headers, a tenth of the body, then gone
            sk.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b"{" * 100)
            time.sleep(0.3)
        t0 = time.time()
        while time.time() - t0 < 10 and 'mlops_nb_client_disconnects_total{route="/predict"} 1.0' not in call(port, "GET", "/metrics")[1]: time.sleep(0.2)
        m = call(port, "GET", "/metrics")[1]
    finally:
        stop(p)
        mc.delete_registered_model_alias("breast_cancer", "watched")
    assert 'mlops_nb_client_disconnects_total{route="/predict"} 1.0' in m and 'status="499"' in m and 'status="500"' not in m, m
    assert "Traceback" not in open(log.name).read()


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight(demo, rows, tmp_path):
    """SIGTERM while eight clients send big requests: every request the service had begun (sent at least 0.2 s before the
    signal) is answered 200 and logged; nothing is answered with an error; the process exits within its bounded timeout."""
    import pandas as pd
    port, p, log = _serve(demo, tmp_path)
    big = json.dumps({"dataframe_split": json.loads(pd.concat([rows] * 4).head(2000).to_json(orient="split", index=False))})
    outcomes, stop_ = [], threading.Event()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop_.is_set():
            t0 = time.time()
            try:
                c.request("POST", "/invocations", big, {"Content-Type": "application/json"})
                r = c.getresponse(); r.read(); outcomes.append((t0, r.status, r.getheader("X-Request-ID")))
            except OSError as e:
                outcomes.append((t0, type(e).__name__, None)); break   # the service is going away
    ts = [threading.Thread(target=client) for _ in range(8)]
    for t in ts: t.start()
    time.sleep(3)
    signalled = time.time(); p.send_signal(signal.SIGTERM)
    code = p.wait(60)
    stop_.set()
    for t in ts: t.join(60)
    assert code in (0, -signal.SIGTERM), open(log.name).read()[-2000:]
    begun = [o for o in outcomes if o[0] < signalled - 0.2]
    assert len(begun) > 8 and all(o[1] == 200 for o in begun), [o for o in begun if o[1] != 200]
    assert not [o for o in outcomes if isinstance(o[1], int) and o[1] != 200]   # refused connections after, but no error answer
    answered = {o[2] for o in outcomes if o[1] == 200}
    logged = {r[0] for r in sqlite3.connect(tmp_path / "preds.db").execute("select request_id from predictions")}
    assert answered == logged, (len(answered), len(logged))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is missing: `bash scripts/dev test` installs it as root")
def test_docs_render_without_internet(demo, tmp_path):
    "/docs in Debian's Chromium with every request off the service refused: Swagger UI renders from the service's own files."
    from playwright.sync_api import sync_playwright
    from test_browser import FLAGS
    port, p, log = _serve(demo, tmp_path)
    base, refused = f"http://127.0.0.1:{port}", []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
            page = browser.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else (refused.append(r.request.url), r.abort()))
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            browser.close()
    finally: stop(p)
    assert "/invocations" in paths and "/predict" in paths and "/feedback" in paths, paths
    assert refused == [], refused


@pytest.mark.slow
def test_two_workers_one_log(demo, rows, tmp_path):
    "--workers 2: two service processes on one port answer, write one prediction log, and stop together on SIGTERM."
    port, p, log = _serve(demo, tmp_path, "--workers", "2")
    body = json.dumps({"records": rows.head(3).to_dict(orient="records")})
    pids, ids = set(), set()
    try:
        for _ in range(40):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)   # a new connection each time: either worker may take it
            c.request("POST", "/predict", body, {"Content-Type": "application/json"}); r = c.getresponse()
            assert r.status == 200; ids.add(json.loads(r.read())["request_id"]); c.close()
        import psutil
        def cmdline(ch):   # a child that has just exited (a zombie, or gone) is no worker
            try: return " ".join(ch.cmdline())
            except (psutil.ZombieProcess, psutil.NoSuchProcess): return ""
        pids = {ch.pid for ch in psutil.Process(p.pid).children(recursive=True) if "spawn_main" in cmdline(ch)}
    finally:
        p.send_signal(signal.SIGTERM); code = p.wait(60)
    assert code in (0, -signal.SIGTERM) and len(pids) >= 2, (code, pids, open(log.name).read()[-2000:])
    logged = {r[0] for r in sqlite3.connect(tmp_path / "preds.db").execute("select request_id from predictions")}
    assert logged == ids and len(ids) == 40
