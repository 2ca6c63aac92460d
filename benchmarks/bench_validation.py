"""Data checks: `fingerprint` + schema validation against reading the same data from CSV, and against Great Expectations.

Data: generated here (seeded), `--rows` x 25 columns: 20 float64 (the odd ones with 0.1% NaN) and 5 string
categoricals of 10 categories each; written once to benchmarks/.cache/ (CSV and parquet, keyed by rows and seed).
Our schema is inferred from the data (not timed, like writing expectations by hand), its categories closed
(`closed: true`, so unknown categories are errors as in GE), and the SAME rules are written as a GE suite: per column
exist + type + not-null (where the schema says not nullable) + between(min, max widened by the tolerance) for
numerics + in_set(categories) for categoricals. Each step runs in a fresh subprocess so imports and peak memory
(VmHWM, reset after the data is loaded) are its own:
  read_csv  `pd.read_csv` of the CSV;
  ours      `fingerprint(df)` + `check_data(df, schema, min_rows=10, quiet=True, report=None)` (what the pipelines
            call, without the HTML report) on a DataFrame read from parquet (reading not timed);
  GE        `ValidationDefinition.run(..., result_format="SUMMARY")` of the suite, Great Expectations 1.24.1 in its
            own venv (benchmarks/.envs/ge, created on the first run), on the same parquet data.
Cold = first call in the fresh process (first-call set-up included); warm = second call. Imports are timed apart,
for every tool: ours imports pandera with `mlops_nb.checks`, GE with `great_expectations` (its context and suite
set-up are printed apart too). Then both tools check a corrupted copy and must fail on the same columns.
Goals (issue): ours cold <= read_csv; GE >= 5x ours.

    .venv/bin/python benchmarks/bench_validation.py [--rows 1000000] [--repeat 1]
"""
# Only the standard library at top level: this file is also the child process, and the GE child runs in another venv.
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
GE_ENV = HERE / ".envs" / "ge"
GE_PINS = ["great-expectations==1.24.1", "pandas==3.1.1", "pyarrow"]
FALLBACK_GE_PY = Path("/tmp/probe/env/bin/python")
N_FLOAT, N_CAT, N_LEVELS, SEED = 20, 5, 10, 0


# ------------------------------------------------------------------------------------------------ child helpers
from _child import emit as _emit, reset_peak as _reset_peak, status as _status   # benchmarks/_child.py


def child_read_csv(folder):
    t = time.perf_counter(); import pandas as pd; imp = time.perf_counter() - t
    base = _reset_peak()
    t = time.perf_counter(); df = pd.read_csv(folder / "data.csv"); dt = time.perf_counter() - t
    _emit(step="read_csv", import_s=imp, cold_s=dt, warm_s=None, base_mb=base, peak_mb=_status("VmHWM"), shape=list(df.shape))


def child_ours(folder):
    t = time.perf_counter()
    import pandas as pd
    imp_pd = time.perf_counter() - t
    from mlops_nb.checks import check_data, validate_batch
    from mlops_nb.data import fingerprint
    imp = time.perf_counter() - t - imp_pd
    schema = json.loads((folder / "schema.json").read_text())
    df = pd.read_parquet(folder / "data.parquet")

    def step():
        t = time.perf_counter()
        fp = fingerprint(df)
        t1 = time.perf_counter()
        v = check_data(df, schema, "bench", min_rows=10, quiet=True, report=None)
        t2 = time.perf_counter()
        return fp, v, t1 - t, t2 - t1

    base = _reset_peak()
    fp, v, fp_cold, val_cold = step()
    fp2, v2, fp_warm, val_warm = step()
    peak = _status("VmHWM")
    assert fp == fp2 and v.ok, v.summary()
    bad = pd.read_parquet(folder / "bad.parquet")
    r = validate_batch(bad, schema, min_rows=10)
    _emit(step="ours", import_s=imp, import_pandas_s=imp_pd, cold_s=fp_cold + val_cold, warm_s=fp_warm + val_warm,
          fp_cold_s=fp_cold, val_cold_s=val_cold, fp_warm_s=fp_warm, val_warm_s=val_warm, base_mb=base, peak_mb=peak,
          warnings_clean=len(v.warnings), failed_rules=len(r.errors), failed_columns=sorted({i.column for i in r.errors}),
          failures=[str(i)[:110] for i in r.errors])


def child_ge(folder):
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    t = time.perf_counter()
    import pandas as pd
    imp_pd = time.perf_counter() - t
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    imp = time.perf_counter() - t - imp_pd
    rules = json.loads((folder / "ge_rules.json").read_text())
    df = pd.read_parquet(folder / "data.parquet")

    t = time.perf_counter()   # set-up: context, data source, suite (reported, not part of the validation time)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    bd = ctx.data_sources.add_pandas("mem").add_dataframe_asset("df").add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name="bench"))
    for r in rules:
        c = r["column"]
        suite.add_expectation(gxe.ExpectColumnToExist(column=c))
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=c, type_=r["type"]))
        if not r["nullable"]: suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=c))
        if "min" in r: suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=r["min"], max_value=r["max"]))
        if "categories" in r: suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c, value_set=r["categories"]))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="bench", data=bd, suite=suite))
    setup = time.perf_counter() - t

    def step(frame):
        t = time.perf_counter()
        res = vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        return res, time.perf_counter() - t

    base = _reset_peak()
    res, cold = step(df)
    res2, warm = step(df)
    peak = _status("VmHWM")
    exc = [r.expectation_config.type for r in res.results if r.exception_info.get("raised_exception")]
    assert res.success and res2.success and not exc, (exc, [r.expectation_config.type for r in res.results if not r.success])
    bad = pd.read_parquet(folder / "bad.parquet")
    rb, _ = step(bad)
    failed = [r for r in rb.results if not r.success]
    _emit(step="ge", import_s=imp, import_pandas_s=imp_pd, setup_s=setup, cold_s=cold, warm_s=warm, base_mb=base,
          peak_mb=peak, n_expectations=len(res.results), failed_rules=len(failed),
          failed_columns=sorted({r.expectation_config.kwargs["column"] for r in failed}),
          failures=[f'{r.expectation_config.kwargs["column"]}: {r.expectation_config.type} '
                    f'unexpected_count={r.result.get("unexpected_count")}' for r in failed])


# ------------------------------------------------------------------------------------------------ parent
def make_data(rows: int, seed: int) -> Path:
    "Generate (once per rows+seed) data.csv, data.parquet, bad.parquet, schema.json and ge_rules.json; return the folder."
    import numpy as np, pandas as pd
    from mlops_nb.checks import infer_schema, _hard_range
    folder = CACHE / f"validation_{rows}_{seed}"
    need = ["data.csv", "data.parquet", "bad.parquet", "schema.json", "ge_rules.json"]
    if all((folder / f).is_file() for f in need): return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {rows} rows into {folder} (once) ...", flush=True)
    rng = np.random.default_rng(seed)
    d = {}
    for i in range(N_FLOAT):
        a = rng.normal(50, 15, rows) if i % 4 == 0 else rng.uniform(0, 100, rows)
        if i % 2 == 1: a[rng.choice(rows, max(1, rows // 1000), replace=False)] = np.nan
        d[f"f{i}"] = a
    for j in range(N_CAT):
        levels = np.array([f"c{j}_{k}" for k in range(N_LEVELS)], dtype=object)
        d[f"s{j}"] = pd.array(levels[rng.integers(0, N_LEVELS, rows)], dtype="str")
    df = pd.DataFrame(d)
    schema = infer_schema(df)
    for c in schema["columns"].values():
        if c.get("categories") is not None: c["closed"] = True   # unknown categories are errors, as in_set in GE
    ge_rules = []
    for name, c in schema["columns"].items():
        r = dict(column=name, type="float64" if c["type"] == "float" else "str", nullable=bool(c["nullable"]))
        if c["type"] in ("int", "float"): r["min"], r["max"] = _hard_range(c)
        if c.get("categories") is not None: r["categories"] = c["categories"]
        ge_rules.append(r)
    # corrupted copy: out-of-range values in 2 numeric columns, unknown categories in 1, nulls in a non-nullable one
    bad = df.copy()
    idx = rng.permutation(rows)
    num = [n for n, c in schema["columns"].items() if c["type"] == "float"]
    nonnull = [n for n in num if not schema["columns"][n]["nullable"]]
    k = min(100, max(1, rows // 20))
    bad.loc[idx[:k], num[2]] = 1e6
    bad.loc[idx[k:2 * k], num[5]] = -1e6
    bad.loc[idx[2 * k:2 * k + min(50, k)], "s1"] = "UNKNOWN"
    bad.loc[idx[3 * k:3 * k + min(30, k)], nonnull[0]] = np.nan
    df.to_parquet(folder / "data.parquet"); bad.to_parquet(folder / "bad.parquet")
    (folder / "schema.json").write_text(json.dumps(schema, indent=1))
    (folder / "ge_rules.json").write_text(json.dumps(ge_rules, indent=1))
    (folder / "expected_failures.json").write_text(json.dumps(sorted([num[2], num[5], "s1", nonnull[0]])))
    t = time.perf_counter(); df.to_csv(folder / "data.csv.tmp", index=False); (folder / "data.csv.tmp").rename(folder / "data.csv")
    print(f"  wrote CSV in {time.perf_counter() - t:.1f} s", flush=True)
    return folder


def ge_python() -> tuple[Path, str]:
    "The Python of the GE venv, creating it on first use; falls back to /tmp/probe/env."
    py = GE_ENV / "bin" / "python"
    ok = lambda p: p.is_file() and subprocess.run([str(p), "-c", "import great_expectations, pyarrow"], capture_output=True).returncode == 0
    if ok(py): return py, str(GE_ENV)
    print(f"creating the Great Expectations venv at {GE_ENV} (once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(GE_ENV)], check=True, capture_output=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *GE_PINS], capture_output=True, text=True)
        if r.returncode: raise RuntimeError(r.stderr[-2000:])
        if ok(py): return py, str(GE_ENV)
        raise RuntimeError("great_expectations does not import in the new venv")
    except Exception as e:
        if ok(FALLBACK_GE_PY):
            print(f"  could not create it ({str(e).strip().splitlines()[-1] if str(e).strip() else e}); FALLING BACK to {FALLBACK_GE_PY}")
            return FALLBACK_GE_PY, f"{FALLBACK_GE_PY.parent.parent} (fallback)"
        raise


def run_child(python, step, folder) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "GX_ANALYTICS_ENABLED": "False", "TQDM_DISABLE": "1"}
    r = subprocess.run([str(python), __file__, "--child", step, "--folder", str(folder)], capture_output=True, text=True, env=env)
    lines = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    if r.returncode or not lines: sys.exit(f"child {step} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}")
    return json.loads(lines[-1][7:])


def main(rows: int, repeat: int):
    folder = make_data(rows, SEED)
    gepy, geenv = ge_python()
    ver = subprocess.run([str(gepy), "-c", "import great_expectations as g, pandas as p; print(g.__version__, p.__version__)"],
                         capture_output=True, text=True).stdout.split()
    runs = {"read_csv": [], "ours": [], "ge": []}
    for _ in range(repeat):   # interleaved, one fresh process per step
        runs["read_csv"].append(run_child(sys.executable, "read_csv", folder))
        runs["ours"].append(run_child(sys.executable, "ours", folder))
        runs["ge"].append(run_child(gepy, "ge", folder))
    med = lambda step, k: statistics.median(r[k] for r in runs[step]) if runs[step][0].get(k) is not None else None
    f = lambda x, w=7, p=2: f"{x:{w}.{p}f}" if x is not None else " " * (w - 1) + "-"
    import pandas, pandera
    size = sum(p.stat().st_size for p in [folder / "data.csv"]) / 1e6
    print(f"\n{rows:,} rows x 25 columns (20 float64, 5 str categoricals), CSV {size:.0f} MB; median of {repeat} fresh process(es) per step")
    print(f"ours: pandas {pandas.__version__}, pandera {pandera.__version__};  GE: great_expectations {ver[0] if ver else '?'}, "
          f"pandas {ver[1] if len(ver) > 1 else '?'} in {geenv}")
    print(f"{'step':46s} {'import s':>8s} {'cold s':>7s} {'warm s':>7s} {'base MB':>8s} {'peak MB':>8s} {'step MB':>8s}")
    label = {"read_csv": "pd.read_csv(data.csv)",
             "ours": "ours: fingerprint + check_data",
             "ge": f"GE: suite run, SUMMARY ({runs['ge'][0]['n_expectations']} expectations)"}
    for s in runs:
        b, p = med(s, "base_mb"), med(s, "peak_mb")
        print(f"{label[s]:46s} {f(med(s, 'import_s'), 8)} {f(med(s, 'cold_s'))} {f(med(s, 'warm_s'))} {f(b, 8, 0)} {f(p, 8, 0)} {f(p - b, 8, 0)}")
    print(f"{'   of which fingerprint':46s} {'':8s} {f(med('ours', 'fp_cold_s'))} {f(med('ours', 'fp_warm_s'))}")
    print(f"{'   of which check_data':46s} {'':8s} {f(med('ours', 'val_cold_s'))} {f(med('ours', 'val_warm_s'))}")
    print(f"   (GE context + suite set-up, not timed above: {med('ge', 'setup_s'):.2f} s; pandas import: ours {med('ours', 'import_pandas_s'):.2f} s, "
          f"GE env {med('ge', 'import_pandas_s'):.2f} s, not in 'import s';\n    ours imports pandera with mlops_nb.checks: its 'import s')")
    print("   cold samples: " + "; ".join(f"{k} {[round(r['cold_s'], 2) for r in v]}" for k, v in runs.items()))
    csv, oc, ow, gc_, gw = med("read_csv", "cold_s"), med("ours", "cold_s"), med("ours", "warm_s"), med("ge", "cold_s"), med("ge", "warm_s")
    print(f"ours / read_csv   cold {oc / csv:5.2f}   warm {ow / csv:5.2f}   (goal <= 1.00)  {'MET' if oc <= csv else 'MISSED'} cold, {'MET' if ow <= csv else 'MISSED'} warm")
    print(f"GE / ours         cold {gc_ / oc:5.2f}x  warm {gw / ow:5.2f}x  (goal >= 5x)    {'MET' if gc_ / oc >= 5 else 'MISSED'} cold, {'MET' if gw / ow >= 5 else 'MISSED'} warm")
    print(f"peak memory       ours {med('ours', 'peak_mb'):.0f} MB   GE {med('ge', 'peak_mb'):.0f} MB   (data alone: ours {med('ours', 'base_mb'):.0f} MB, GE {med('ge', 'base_mb'):.0f} MB)")
    o, g = runs["ours"][0], runs["ge"][0]
    expected = json.loads((folder / "expected_failures.json").read_text())
    print(f"\ncorrupted copy (injected into {', '.join(expected)}):")
    print(f"  ours: {o['failed_rules']} failed rules on {o['failed_columns']}")
    for x in o["failures"]: print(f"     {x}")
    print(f"  GE:   {g['failed_rules']} failed expectations on {g['failed_columns']}")
    for x in g["failures"]: print(f"     {x}")
    assert o["failed_columns"] == g["failed_columns"] == expected, (o["failed_columns"], g["failed_columns"], expected)
    print("  both flag the same columns: OK")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", choices=["read_csv", "ours", "ge"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: {"read_csv": child_read_csv, "ours": child_ours, "ge": child_ge}[a.child](a.folder)
    else: main(a.rows, a.repeat)
