"""Performance without labels: our CBPE and DLE (`mlops_nb.estimate`) against NannyML's, side by side, per window.

Data: generated here (seeded), five numeric features, a model fitted on 20,000 training rows, then
  reference   10,000 held-out rows with labels: what both tools learn their estimate from;
  covariate   ten windows of 5,000 rows, the features drifting step by step toward the model's decision boundary
              (classification) or into regions of larger noise (regression); the relation of inputs to labels unchanged;
  concept     three windows of 5,000 rows from the reference's distribution whose labels follow a changed relation.
Classification: binary, labels from a logistic function of x0..x2, the model scikit-learn's HistGradientBoostingClassifier;
estimated accuracy, ROC AUC and F1. Regression: y = 3 x0 + x1^2 + noise whose scale grows with |x2|, the model a
HistGradientBoostingRegressor; estimated MAE and RMSE.
Each tool runs in a fresh process of its own environment, its imports timed apart from the step (fit on the reference,
estimate every window): ours in this venv, NannyML 0.13.1 in benchmarks/.envs/nannyml (pins in
benchmarks/requirements-nannyml.txt, created on the first run: NannyML needs pandas < 3 and Python < 3.13). Both are timed on the
model's probabilities and predictions computed beforehand (NannyML reads them from its frame; ours gets them from a
stand-in for the model, `Given`); ours is also timed scoring them itself, and must give the same estimate. Printed: per window the realised metric, both estimates and their errors; then the mean absolute
estimation error on the covariate-shift windows, the time, and whether the concept-drift windows were caught (the
realised metric outside the estimate's band) or silently wrong.
Goals (issue 16): our mean absolute error no worse than NannyML's on covariate shift; at least 10x faster.

    .venv/bin/python benchmarks/bench_perf_estimate.py [--window 5000]
"""
# Only the standard library at top level: this file is also the child process, and the NannyML child runs in another venv.
import argparse, json, os, subprocess, sys, time
from pathlib import Path
from _child import emit, venv_python   # benchmarks/_child.py: standard library only, like this file's top level

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "perf_estimate"
NML_ENV, NML_REQS, NML_PYTHON = HERE / ".envs" / "nannyml", HERE / "requirements-nannyml.txt", "python3.11"
FEATURES = [f"x{i}" for i in range(5)]


def make_data(window):
    "Write reference, windows and the fitted models to CACHE; return nothing (the children read the files)."
    import numpy as np, pandas as pd, skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    rng = np.random.default_rng(0)
    def X(n, shift=0.0, scale=1.0):
        return pd.DataFrame({f: rng.normal(0, 1, n) * (scale if i < 3 else 1) + (shift if i == 2 else 0) for i, f in enumerate(FEATURES)})
    def y_cls(x, concept=False):
        z = 2 * x.x0 + (1.5 if concept else -1.5) * x.x1 + 0.5 * x.x2   # concept drift: x1 now pushes the other way
        return (rng.uniform(size=len(x)) < 1 / (1 + np.exp(-z))).astype(int)
    def y_reg(x, concept=False): return 3 * x.x0 + (x.x1 ** 2) * (-1 if concept else 1) + rng.normal(size=len(x)) * (0.5 + np.abs(x.x2))
    CACHE.mkdir(parents=True, exist_ok=True)
    for task, ylab, Model in (("classification", y_cls, HistGradientBoostingClassifier), ("regression", y_reg, HistGradientBoostingRegressor)):
        tr = X(20000); m = Model(random_state=0).fit(tr, ylab(tr))
        ref = X(10000); frames = [ref.assign(y=ylab(ref), case="reference", window=-1)]
        for k in range(10):   # covariate shift, step by step
            w = X(window, scale=1 - 0.07 * k) if task == "classification" else X(window, shift=0.3 * k)
            frames.append(w.assign(y=ylab(w), case="covariate", window=k))
        for k in range(3):
            w = X(window); frames.append(w.assign(y=ylab(w, concept=True), case="concept", window=10 + k))
        df = pd.concat(frames, ignore_index=True)
        df["pred"] = m.predict(df[FEATURES])
        if task == "classification": df["proba"] = m.predict_proba(df[FEATURES])[:, 1]
        df.to_parquet(CACHE / f"{task}.parquet"); sio.dump(m, CACHE / f"{task}.skops")


# ------------------------------------------------------------------------------------------------ children
class Given:
    "The model's scores computed beforehand and handed out in order: what NannyML is given, so that both times are of the estimate alone."
    def __init__(self, model, outs): self.classes_, self.outs = getattr(model, "classes_", None), list(outs)
    def predict_proba(self, X):
        out = self.outs.pop(0); assert len(out) == len(X); return out
    predict = predict_proba


def child_ours(task):
    t0 = time.perf_counter()
    import numpy as np, pandas as pd, skops.io as sio
    from mlops_nb.estimate import Estimator, estimate_reference
    imports = time.perf_counter() - t0
    df = pd.read_parquet(CACHE / f"{task}.parquet"); p = CACHE / f"{task}.skops"
    model = sio.load(p, trusted=sio.get_untrusted_types(file=p))
    ref, ana = df[df.case == "reference"], df[df.case != "reference"]
    wins = [(int(k), w[FEATURES]) for k, w in ana.groupby("window")]   # the frames made before, as NannyML's is
    Xr, yr = ref[FEATURES], ref["y"]
    score = model.predict_proba if task == "classification" else model.predict
    given = Given(model, [score(Xr)] + [score(X) for _, X in wins] * (task == "classification"))
    preds = [model.predict(X) for _, X in wins]
    def run(m, scored):
        t = time.perf_counter()
        est, errs = estimate_reference(m, Xr, yr, task)   # at training, in our pipeline
        fit, t, e, out = time.perf_counter() - t, time.perf_counter(), Estimator(m, est, errs), {}
        for (k, X), pred in zip(wins, preds):   # in the monitor
            out[k] = e.window().update(X, m.predict(X) if scored else pred).metrics()
        return fit, time.perf_counter() - t, out
    fit_own, estimate_own, out = run(given, False)   # first, in a fresh process: as cold as NannyML's one run
    fit, estimate, scored = run(model, True)
    assert json.dumps(scored, sort_keys=True) == json.dumps(out, sort_keys=True), "the same estimate with the scores given"
    emit(tool="ours", imports=imports, fit=fit, estimate=estimate, fit_own=fit_own, estimate_own=estimate_own, windows=out)


def child_nannyml(task, window):
    t0 = time.perf_counter()
    import warnings; warnings.filterwarnings("ignore")
    import logging; logging.disable(logging.WARNING)
    import pandas as pd, nannyml as nml
    imports = time.perf_counter() - t0
    df = pd.read_parquet(CACHE / f"{task}.parquet")
    ref, ana = df[df.case == "reference"], df[df.case != "reference"]
    t = time.perf_counter()
    if task == "classification":
        metrics = ["accuracy", "roc_auc", "f1"]
        e = nml.CBPE(y_pred_proba="proba", y_pred="pred", y_true="y", problem_type="classification_binary", metrics=metrics, chunk_size=window)
    else:
        metrics = ["mae", "rmse"]
        e = nml.DLE(feature_column_names=FEATURES, y_pred="pred", y_true="y", metrics=metrics, chunk_size=window)
    e.fit(ref)
    fit, t = time.perf_counter() - t, time.perf_counter()
    r = e.estimate(ana.drop(columns="y")).filter(period="analysis").to_df()
    estimate = time.perf_counter() - t
    wins = sorted(ana.window.unique())
    out = {int(k): {m: float(r[(m, "value")].iloc[i]) for m in metrics} | {f"{m}_low": float(r[(m, "lower_confidence_boundary")].iloc[i]) for m in metrics}
           | {f"{m}_high": float(r[(m, "upper_confidence_boundary")].iloc[i]) for m in metrics} for i, k in enumerate(wins)}
    emit(tool="nannyml", version=nml.__version__, imports=imports, fit=fit, estimate=estimate, windows=out)


# ------------------------------------------------------------------------------------------------ parent
def nml_python():
    return venv_python(NML_ENV, NML_REQS, NML_PYTHON, "import nannyml, pyarrow", "NannyML")


def run_child(python, *args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "DO_NOT_TRACK": "1", "NML_DISABLE_USAGE_LOGGING": "1"}
    r = subprocess.run([str(python), __file__, "--child", *map(str, args)], capture_output=True, text=True, env=env)
    line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None: sys.exit(f"child {args} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(line[7:])


def realised(task):
    import numpy as np, pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    df = pd.read_parquet(CACHE / f"{task}.parquet"); out = {}
    for k, w in df[df.case != "reference"].groupby("window"):
        if task == "classification":
            out[int(k)] = dict(accuracy=accuracy_score(w.y, w.pred), roc_auc=roc_auc_score(w.y, w.proba), f1=f1_score(w.y, w.pred, average="macro"))
        else:
            e = w.y - w.pred; out[int(k)] = dict(mae=float(np.abs(e).mean()), rmse=float(np.sqrt((e ** 2).mean())))
    return out


def report(task, real, ours, theirs):
    metrics = ["accuracy", "roc_auc", "f1"] if task == "classification" else ["mae", "rmse"]
    print(f"\n== {task}: realised | ours (error) | NannyML {theirs.get('version', '')} (error), per window of the analysis period")
    errs = {t: {m: [] for m in metrics} for t in ("ours", "nannyml")}
    caught = {t: 0 for t in ("ours", "nannyml")}
    for k in sorted(real):
        case = "concept" if k >= 10 else "covariate"
        cells = []
        for m in metrics:
            r, o, n = real[k][m], ours["windows"][str(k)].get(m), theirs["windows"][str(k)].get(m)
            cells.append(f"{m} {r:.3f} | {o:.3f} ({o - r:+.3f}) | {n:.3f} ({n - r:+.3f})")
            if case == "covariate": errs["ours"][m].append(abs(o - r)); errs["nannyml"][m].append(abs(n - r))
        if case == "concept":   # the realised metric outside the estimate's band: the estimate is flagged, not silently wrong
            m = metrics[0]
            for t, res in (("ours", ours), ("nannyml", theirs)):
                w = res["windows"][str(k)]; caught[t] += not (w[f"{m}_low"] <= real[k][m] <= w[f"{m}_high"])
        print(f"  {case:9} w{k:<2} " + "  ||  ".join(cells))
    print("  mean absolute estimation error, covariate shift: " + "; ".join(
        f"{m} ours {sum(errs['ours'][m]) / len(errs['ours'][m]):.4f}, NannyML {sum(errs['nannyml'][m]) / len(errs['nannyml'][m]):.4f}" for m in metrics))
    print(f"  concept drift, 3 windows, realised {metrics[0]} outside the estimate's band (the estimate shown unreliable once labels come): "
          f"ours {caught['ours']}/3, NannyML {caught['nannyml']}/3")
    for phase, when in (("fit", "learning from the reference: at training, in our pipeline"), ("estimate", f"estimating {len(real)} windows: each monitor run")):
        own = ours[f"{phase}_own"]
        print(f"  time, {when}: ours {own:.3f} s given the model's scores as NannyML is ({ours[phase]:.3f} s scoring them too), "
              f"NannyML {theirs[phase]:.3f} s: {theirs[phase] / own:.1f}x")
    own, nml = ours["fit_own"] + ours["estimate_own"], theirs["fit"] + theirs["estimate"]
    print(f"  time, both (imports apart: ours {ours['imports']:.2f} s, NannyML {theirs['imports']:.2f} s): ours {own:.3f} s, NannyML {nml:.3f} s: "
          f"{nml / own:.1f}x (goal >= 10x)")
    return {m: (sum(errs["ours"][m]), sum(errs["nannyml"][m])) for m in metrics}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=5000)
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        tool, task = a.child[0], a.child[1]
        return child_ours(task) if tool == "ours" else child_nannyml(task, int(a.child[2]))
    make_data(a.window)
    py = nml_python()
    for task in ("classification", "regression"):
        report(task, realised(task), run_child(sys.executable, "ours", task), run_child(py, "nannyml", task, a.window))


if __name__ == "__main__":
    main()
