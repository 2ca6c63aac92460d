"""mlops-nb serve against `mlflow models serve --env-manager local`: same model, machine and load generator, one run.

    python benchmarks/bench_serve.py [--duration 60] [--dir /tmp/bench_serve]

Makes a demo project (breast_cancer, 30 columns), starts each server on loopback in turn, and measures: start to first
answer; one-row and thousand-row requests with one keep-alive client; eight concurrent clients for --duration seconds.
Ours runs with schema checks and prediction logging on. Prints each figure and the ratio ours/theirs; then ours with
`--shadow` (another version scores every request off the request path, its answers logged: the cost a client sees
should be nil), and ours with --workers 2 (two service processes on the port, one prediction log).
"""
import argparse, http.client, json, os, signal, socket, sqlite3, subprocess, sys, threading, time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def post(c, body):
    c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); return r.status


def start(cmd, cwd, env, port, timeout=180):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = json.dumps({"dataframe_split": {"columns": COLS, "data": ROWS[:1]}})
    while time.perf_counter() - t0 < timeout:
        try:
            if post(http.client.HTTPConnection("127.0.0.1", port, timeout=5), body) == 200: return p, time.perf_counter() - t0
        except OSError: time.sleep(0.02)
    p.kill(); raise SystemExit(f"{cmd[0]} did not answer in {timeout}s")


def one_client(port, body, n):
    c, lat = http.client.HTTPConnection("127.0.0.1", port, timeout=30), []
    for _ in range(5): post(c, body)
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter(); assert post(c, body) == 200; lat.append(time.perf_counter() - t)
    lat.sort()
    return n / (time.perf_counter() - t0), lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def many_clients(port, body, clients, seconds):
    done, errors, end = [0] * clients, [0] * clients, time.perf_counter() + seconds
    def worker(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < end:
            try: ok = post(c, body) == 200
            except OSError: ok = False; c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            done[i] += ok; errors[i] += not ok
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    return sum(done) / seconds, sum(errors)


def measure(name, cmd, cwd, env, port, duration):
    p, startup = start(cmd, cwd, env, port)
    try:
        one = json.dumps({"dataframe_split": {"columns": COLS, "data": ROWS[:1]}})
        thousand = json.dumps({"dataframe_split": {"columns": COLS, "data": (ROWS * 2)[:1000]}})
        r1 = one_client(port, one, 2000)
        r1000 = one_client(port, thousand, 100)
        r8, err = many_clients(port, one, 8, duration)
    finally:
        p.send_signal(signal.SIGTERM); p.wait(60)
    print(f"{name:>7}: start {startup:5.2f} s | 1 row {r1[0]:7.1f} req/s p50 {r1[1]*1e3:5.2f} ms p99 {r1[2]*1e3:5.2f} ms | "
          f"1000 rows {r1000[0]:6.1f} req/s | 8 clients {r8:7.1f} req/s, {err} errors", flush=True)
    return dict(startup=startup, rps1=r1[0], p50=r1[1], p99=r1[2], rps1000=r1000[0], rps8=r8, errors=err)


def main():
    global COLS, ROWS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60, help="seconds of the eight-client run (default 60)")
    ap.add_argument("--dir", default="/tmp/bench_serve", help="demo project folder (replaced)")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    d = Path(a.dir).resolve()
    subprocess.run([BIN / "mlops-nb", "demo", "--dir", d], env=env, check=True, capture_output=True)
    import pandas as pd
    X = pd.read_csv(d / "data" / "breast_cancer.csv").drop(columns="diagnosis")
    COLS, ROWS = list(X.columns), X.values.tolist()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{d}/workspace/mlflow.db"
    port = free_port()
    theirs = measure("mlflow", [str(BIN / "mlflow"), "models", "serve", "-m", "models:/breast_cancer@champion",
                                "--env-manager", "local", "-p", str(port)], d, env, port, a.duration)
    port = free_port()
    ours = measure("mlops-nb", [str(BIN / "mlops-nb"), "serve", "--port", str(port)], d, env, port, a.duration)
    print(f"ratios (ours/mlflow): 1 row {ours['rps1']/theirs['rps1']:.2f}x (goal >= 3) | 1000 rows {ours['rps1000']/theirs['rps1000']:.2f}x (goal >= 2) | "
          f"8 clients {ours['rps8']/theirs['rps8']:.2f}x, errors {ours['errors']} (goal 0) | start {ours['startup']/theirs['startup']:.2f} (goal <= 0.5) | "
          f"our p99/p50 {ours['p99']/ours['p50']:.2f} (goal <= 2)")
    with sqlite3.connect(d / "workspace" / "mlflow.db") as con:
        champ = str(con.execute("select version from registered_model_aliases where name = 'breast_cancer' and alias = 'champion'").fetchone()[0])
        shadow = str(max(v for (v,) in con.execute("select version from model_versions where name = 'breast_cancer'") if str(v) != champ))
    port = free_port()
    sh = measure("shadow", [str(BIN / "mlops-nb"), "serve", "--port", str(port), "--shadow", shadow], d, env, port, a.duration)
    print(f"shadow on (version {shadow} beside champion {champ}) / off: 1 row {sh['rps1']/ours['rps1']:.2f}x (goal >= 0.9) | "
          f"p50 {sh['p50']/ours['p50']:.2f}x (goal <= 1.15) | p99 {sh['p99']/ours['p99']:.2f}x | 8 clients {sh['rps8']/ours['rps8']:.2f}x | "
          f"1000 rows {sh['rps1000']/ours['rps1000']:.2f}x | shadow on against mlflow, 1 row {sh['rps1']/theirs['rps1']:.2f}x (goal >= 3)")
    port = free_port()
    two = measure("ours x2", [str(BIN / "mlops-nb"), "serve", "--port", str(port), "--workers", "2"], d, env, port, a.duration)
    print(f"workers (ours, 8 clients): 1 worker {ours['rps8']:.1f} req/s, 2 workers {two['rps8']:.1f} req/s ({two['rps8']/ours['rps8']:.2f}x; "
          f"{os.cpu_count()} cores shared with the load generator) | 1000 rows, one client: {ours['rps1000']:.1f} -> {two['rps1000']:.1f} req/s")


if __name__ == "__main__":
    main()
