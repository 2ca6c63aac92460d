"""Scale-out on Dask: scoring and monitoring the same Parquet data in one process and on one and two local workers.

Makes a project with a logistic-regression model on three features (trained and validated by the real pipelines),
writes --rows rows in --parts row groups to one Parquet file, then, in this order:
  single    `score.score_batch` over `data.read_chunks` (the score pipeline's single-process path), and `monitor.monitor`
            over `score.monitor_batch` (the monitor pipeline's);
  1 worker, 2 workers   `cluster.score_on_cluster` and `cluster.monitor_on_cluster` on a LocalCluster of that many
            worker processes, one thread each (started here, under `if __name__ == "__main__"`).
Prints rows per second (and per worker), and each worker's peak memory (ru_maxrss) against this process's peak for
the single-process path. Goals (issue 17): per-worker throughput >= 0.8x the single process; two workers >= 1.6x one
when each has its core; memory per worker bounded by the partition, not the data.

    .venv/bin/python benchmarks/bench_scale_out.py [--rows 4000000] [--parts 32] [--dir /tmp/bench_scale_out]
"""
import argparse, os, shutil, subprocess, sys, time
from pathlib import Path

BIN = Path(sys.executable).parent


def _reset_peak():
    "Reset this process's memory high-water mark (VmHWM) to its current RSS (Linux)."
    with open("/proc/self/clear_refs", "w") as f: f.write("5")

def _peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"): return int(line.split()[1]) / 1024
    return float("nan")


def project(d: Path, rows: int, parts: int) -> dict:
    import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
    from mlops_nb.cli import make_demo_project
    if d.exists(): shutil.rmtree(d)
    p = make_demo_project(d)
    rng = np.random.default_rng(0)
    def frame(n):
        X = pd.DataFrame({"x1": rng.normal(0, 1, n), "x2": rng.normal(0, 1, n), "x3": rng.normal(0, 1, n)})
        return X.assign(y=np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-(2 * X.x1 - X.x2))), "yes", "no"))
    frame(5000).to_csv(p / "reference.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "MLFLOW_"))}
    env.update(MLOPS_NB_DATA="reference.csv", MLOPS_NB_TARGET="y", MLOPS_NB_MODEL_NAME="synth", MLOPS_NB_ESTIMATOR="logistic_regression")
    for step in ("train", "validate"): subprocess.run([str(BIN / "mlops-nb"), "run", step], cwd=p, env=env, check=True, capture_output=True)
    big = frame(rows)
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), p / "big.parquet", row_group_size=rows // parts)
    return dict(dir=p, data=str(p / "big.parquet"), uri=f"sqlite:///{p / 'workspace' / 'mlflow.db'}", partition_mb=big.memory_usage().sum() / parts / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4_000_000); ap.add_argument("--parts", type=int, default=32)
    ap.add_argument("--dir", default="/tmp/bench_scale_out")
    a = ap.parse_args()
    pj = project(Path(a.dir), a.rows, a.parts)
    import mlflow
    from distributed import Client, LocalCluster
    from mlops_nb.config import Settings
    from mlops_nb.cluster import monitor_on_cluster, score_on_cluster
    from mlops_nb.data import read_chunks
    from mlops_nb.monitor import monitor
    from mlops_nb.reference import load_reference, raw_columns
    from mlops_nb.score import load_scoring_model, monitor_batch, score_batch
    mlflow.set_tracking_uri(pj["uri"]); mlflow.set_registry_uri(pj["uri"])
    sm = load_scoring_model("models:/synth@champion", pj["uri"])
    ref = load_reference("models:/synth@champion")
    s = Settings(workspace=str(pj["dir"] / "workspace"))
    out = pj["dir"] / "out"; out.mkdir()
    print(f"{a.rows:,} rows in {a.parts} partitions ({pj['partition_mb']:.0f} MB each in memory); {os.cpu_count()} cores", flush=True)

    _reset_peak(); rss0 = _peak_mb()
    t = time.perf_counter(); total, chunks = read_chunks(pj["data"], None, a.rows // a.parts); score_batch(chunks, total, sm, out / "single.parquet", "parquet")
    single_score = a.rows / (time.perf_counter() - t)
    t = time.perf_counter(); _, chunks = monitor_batch(pj["data"], None, a.rows // a.parts, "synth", sm.version, raw_columns(ref)); monitor(ref, chunks, s)
    single_mon = a.rows / (time.perf_counter() - t)
    single_mb = _peak_mb()
    print(f"single process: score {single_score:,.0f} rows/s, monitor {single_mon:,.0f} rows/s; peak {single_mb:.0f} MB (at the start: {rss0:.0f} MB)", flush=True)

    import dask
    dask.config.set({"distributed.worker.multiprocessing-method": "spawn"})   # workers of their own memory, not forks of this one
    res = {}
    for k in (1, 2):
        with LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc) as c:
            c.run(_reset_peak)   # each worker's memory high-water mark from here (a forked worker starts with this process's)
            score_on_cluster(c, pj["data"], sm, out / f"warm{k}.parquet", pj["uri"])   # each worker loads the model once: not timed
            monitor_on_cluster(c, pj["data"], ref, s, pj["uri"])
            t = time.perf_counter(); score_on_cluster(c, pj["data"], sm, out / f"w{k}.parquet", pj["uri"]); sc = a.rows / (time.perf_counter() - t)
            t = time.perf_counter(); monitor_on_cluster(c, pj["data"], ref, s, pj["uri"]); mo = a.rows / (time.perf_counter() - t)
            mem = c.run(_peak_mb)
        res[k] = dict(score=sc, monitor=mo, mem=max(mem.values()))
        print(f"{k} worker{'s' if k > 1 else ''}: score {sc:,.0f} rows/s ({sc / k:,.0f} per worker), monitor {mo:,.0f} rows/s ({mo / k:,.0f} per worker); "
              f"peak per worker {res[k]['mem']:.0f} MB", flush=True)
    one, two = res[1], res[2]
    print(f"per-worker throughput against one process: score {one['score'] / single_score:.2f}x, monitor {one['monitor'] / single_mon:.2f}x (goal >= 0.8) | "
          f"two workers against one: score {two['score'] / one['score']:.2f}x, monitor {two['monitor'] / one['monitor']:.2f}x "
          f"(goal >= 1.6 when each has its core; {os.cpu_count()} cores, this process and the scheduler share them) | "
          f"memory per worker {two['mem']:.0f} MB for {a.rows:,} rows (partitions of {pj['partition_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
