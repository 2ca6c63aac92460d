"""Batch scoring on a real Dask cluster: `dask scheduler` and two `dask worker` processes started from the command line on
127.0.0.1, the score pipeline run with `-p cluster`, compared row for row with the single-process path."""
import json, os, signal, subprocess, time
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN, free_port, mlops_nb

pytestmark = pytest.mark.slow
ROWS, PARTS = 2_000_000, 16


def synthetic(n, seed):
    import pandas as pd
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(0, 1, n), "x2": rng.normal(0, 1, n), "x3": rng.normal(0, 1, n)})
    return X.assign(y=np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-(2.0 * X.x1 - X.x2))), "yes", "no"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import pyarrow as pa, pyarrow.parquet as pq
    from mlops_nb.cli import make_demo_project
    p = make_demo_project(tmp_path_factory.mktemp("cluster") / "proj")
    synthetic(5000, 0).to_csv(p / "reference.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "MLFLOW_"))}
    env.update(MLOPS_NB_DATA="reference.csv", MLOPS_NB_TARGET="y", MLOPS_NB_MODEL_NAME="synth", MLOPS_NB_ESTIMATOR="logistic_regression",
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    for step in ("train", "validate"):
        r = mlops_nb("run", step, cwd=p, env=env)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    big = synthetic(ROWS, 1).drop(columns="y")
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), p / "big.parquet", row_group_size=ROWS // PARTS)
    return p, env


@pytest.fixture(scope="module")
def cluster(project, tmp_path_factory):
    "A scheduler and two workers (one thread each), as an operator starts them."
    p, env = project
    logs = tmp_path_factory.mktemp("dask")
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    start = lambda cmd, name: subprocess.Popen([str(c) for c in cmd], cwd=p, env=env, stdout=open(logs / name, "w"), stderr=subprocess.STDOUT)
    sched = start([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], "scheduler.log")
    workers = [start([BIN / "dask", "worker", addr, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--memory-limit", "3GiB",
                      "--name", f"w{k}"], f"worker{k}.log") for k in range(2)]
    from distributed import Client
    with Client(addr, timeout=30) as c: c.wait_for_workers(2, timeout=60)
    yield addr, workers, logs
    for proc in workers + [sched]:
        if proc.poll() is None: proc.send_signal(signal.SIGTERM)
    for proc in workers + [sched]:
        try: proc.wait(30)
        except subprocess.TimeoutExpired: proc.kill()


def score(project, output, *params, timeout=900):
    p, env = project
    r = mlops_nb("run", "score", "--json", "-p", "data", "big.parquet", "-p", "output", output, *params, cwd=p, env=env, timeout=timeout)
    return r, (json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {})


def read(path):
    import pandas as pd
    return pd.read_parquet(path).sort_values("row", ignore_index=True)


def test_cluster_scores_exactly_as_one_process(project, cluster):
    addr, _, _ = cluster
    r, one = score(project, "single.parquet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r, many = score(project, "cluster.parquet", "-p", "cluster", addr)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert many["rows"] == ROWS and many["chunks"] == PARTS
    p, _ = project
    a, b = read(p / "single.parquet"), read(p / "cluster.parquet")
    assert len(b) == ROWS and b["row"].tolist() == list(range(ROWS))
    assert (a["prediction"] == b["prediction"]).all() and np.array_equal(a["probability"].to_numpy(), b["probability"].to_numpy())
    assert set(b["model_version"]) == {"1"} and not list(p.glob(".cluster.parquet.*"))


def test_cluster_monitors_exactly_as_one_process(project, cluster):
    "The same batch monitored in one process and on the cluster (windows of 500,000 rows): the same rows, PSI, drift and verdict."
    addr, _, _ = cluster
    p, env = project
    runs = []
    for extra in ([], ["-p", "cluster", addr]):
        r = mlops_nb("run", "monitor", "--json", "-p", "current", "big.parquet", "-p", "monitor_window", "500000", *extra, cwd=p, env=env, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    one, many = runs
    assert (one["rows"], one["windows"], one["window"]) == (many["rows"], many["windows"], many["window"]) == (ROWS, 4, "rows 1500000-1999999")
    for k in ("drift_detected", "drifted_features", "drift_share", "prediction_drift", "performance_degraded"): assert one[k] == many[k], k
    assert one["psi"].keys() == many["psi"].keys() and all(abs(one["psi"][f] - many["psi"][f]) < 1e-12 for f in one["psi"]), (one["psi"], many["psi"])


def test_a_killed_worker_loses_no_row(project, cluster):
    "SIGKILL one of the two workers mid-run: Dask runs its partitions again on the other; every row is written once."
    addr, workers, _ = cluster
    p, env = project
    proc = subprocess.Popen([str(BIN / "mlops-nb"), "run", "score", "--json", "-p", "data", "big.parquet", "-p", "output", "killed.parquet",
                             "-p", "cluster", addr], cwd=p, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 300 and not any(d.glob("part-*.parquet") for d in p.glob(".killed.parquet.*.tmp")): time.sleep(0.05)
    workers[0].send_signal(signal.SIGKILL)   # a partition or more in flight on it
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    b = read(p / "killed.parquet")
    assert len(b) == ROWS and b["row"].is_unique and b["row"].tolist() == list(range(ROWS))


def test_an_unreachable_scheduler_fails_within_seconds(project):
    t0 = time.time()
    r, res = score(project, "nowhere.parquet", "-p", "cluster", "tcp://127.0.0.1:1")
    assert r.returncode != 0 and time.time() - t0 < 60
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in r.stdout + r.stderr
    assert not (project[0] / "nowhere.parquet").exists()


def test_a_bad_partition_stops_the_run_naming_it(project, cluster):
    import pandas as pd
    addr, _, _ = cluster
    p, env = project
    d = p / "parts"; d.mkdir(exist_ok=True)
    synthetic(1000, 2).drop(columns="y").to_parquet(d / "a.parquet")
    synthetic(1000, 3).drop(columns="y").assign(x2="oops").to_parquet(d / "b.parquet")
    r = mlops_nb("run", "score", "-p", "data", "parts", "-p", "output", "bad.parquet", "-p", "cluster", addr, cwd=p, env=env, timeout=600)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "b.parquet (partition 1, row group 0)" in text and "x2" in text, text[-3000:]
    assert not (p / "bad.parquet").exists() and not list(p.glob(".bad.parquet.*"))
