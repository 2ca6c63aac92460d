"""Why DLE's error models are gradient-boosted trees: cheaper models measured against them (issue 16's speed goal).

NannyML's DLE fits LightGBM; ours fits scikit-learn's histogram gradient boosting (`mlops_nb.estimate`), no faster.
Ten times NannyML's speed would need an error model some 30 times cheaper. This script fits ours and three cheaper
kinds of additive model on the same held-out rows, features plus prediction to absolute and squared error, and
prints each one's time and mean absolute estimation error of MAE and RMSE over ten windows of growing covariate
shift, for four kinds of error:
  noise       noise whose scale grows with |x2| (as bench_perf_estimate.py's regression case);
  product     noise whose scale grows with |x1 * x2|;
  gated       noise whose scale grows with |x2| only where x1 > 0, and a little with |x0|;
  misfit      the model's own error: y = 3 x0 + x1 * x2 + small noise, which the trees fit imperfectly.
Candidates: cubic splines by least squares (4 or 8 knots); penalised splines (10 or 20 segments, second-difference
penalty chosen by generalised cross-validation); a binned additive model (32 quantile bins, backfitted).

    .venv/bin/python benchmarks/bench_error_models.py [--seeds 4]   (one thread: OMP_NUM_THREADS=1 unless set)
"""
import os, time
os.environ.setdefault("OMP_NUM_THREADS", "1")   # before numpy and scikit-learn load: every model on one thread, as measured
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import SplineTransformer

rng = np.random.default_rng(0)
NOISE = lambda x, s: rng.normal(size=len(x)) * s
KINDS = {
    "noise": lambda x: 3 * x[:, 0] + x[:, 1] ** 2 + NOISE(x, 0.5 + np.abs(x[:, 2])),
    "product": lambda x: 3 * x[:, 0] + x[:, 1] ** 2 + NOISE(x, 0.5 + np.abs(x[:, 1] * x[:, 2])),
    "gated": lambda x: 3 * x[:, 0] + x[:, 1] ** 2 + NOISE(x, 0.5 + (x[:, 1] > 0) * np.abs(x[:, 2]) + 0.3 * np.abs(x[:, 0])),
    "misfit": lambda x: 3 * x[:, 0] + x[:, 1] * x[:, 2] + NOISE(x, 0.5),
}


def X(n, shift=0.0):
    x = rng.normal(size=(n, 5)); x[:, 2] += shift; return x


def trees():   # as mlops_nb.estimate.estimate_reference fits them
    fit = lambda Z, T: [HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=0).fit(Z, t) for t in T.T]
    return fit, lambda m, Z: np.column_stack([r.predict(Z) for r in m])


def splines(knots=None, segments=None):
    "Least squares on a cubic spline basis per input (`knots`), or penalised (`segments`, smoothing by GCV)."
    def fit(Z, T):
        s = SplineTransformer(n_knots=knots or segments + 1, degree=3, extrapolation="linear").fit(Z)
        B = np.column_stack([np.ones(len(Z)), s.transform(Z)]); p, nb, n = B.shape[1], (B.shape[1] - 1) // Z.shape[1], len(Z)
        G, BT = B.T @ B, B.T @ T
        if segments is None: return s, np.linalg.solve(G + 1e-8 * n * np.eye(p), BT)
        D = np.diff(np.eye(nb), 2, axis=0); P = np.zeros((p, p))
        for j in range(Z.shape[1]): P[1 + j * nb:1 + (j + 1) * nb, 1 + j * nb:1 + (j + 1) * nb] = D.T @ D
        W = np.zeros((p, T.shape[1]))
        for t in range(T.shape[1]):
            best = None
            for lam in np.logspace(-3, 5, 17) * n / 1e3:
                Ai = np.linalg.inv(G + lam * P + 1e-8 * n * np.eye(p)); w = Ai @ BT[:, t]; r = T[:, t] - B @ w
                g = n * (r @ r) / (n - np.trace(Ai @ G)) ** 2
                if best is None or g < best[0]: best = (g, w)
            W[:, t] = best[1]
        return s, W
    return fit, lambda m, Z: np.column_stack([np.ones(len(Z)), m[0].transform(Z)]) @ m[1]


def binned(bins=32, passes=30, rate=0.5):
    "An additive model of per-bin steps, backfitted on quantile bins of each input."
    def fit(Z, T):
        edges = [np.unique(np.quantile(z, np.linspace(0, 1, bins + 1)[1:-1])) for z in Z.T]
        idx = [np.searchsorted(e, z) for e, z in zip(edges, Z.T)]; out = []
        for y in T.T:
            F, tabs = np.full(len(y), y.mean()), [np.zeros(len(e) + 1) for e in edges]
            for _ in range(passes):
                for tab, b in zip(tabs, idx):
                    step = rate * np.bincount(b, y - F, len(tab)) / (np.bincount(b, minlength=len(tab)) + 5); tab += step; F += step[b]
            out.append((y.mean(), tabs))
        return edges, out
    def predict(m, Z):
        idx = [np.searchsorted(e, z) for e, z in zip(m[0], Z.T)]
        return np.column_stack([c + sum(tab[b] for tab, b in zip(tabs, idx)) for c, tabs in m[1]])
    return fit, predict


CANDIDATES = {"trees (ours)": trees(), "splines, 4 knots": splines(knots=4), "splines, 8 knots": splines(knots=8),
              "penalised, 10 segments": splines(segments=10), "penalised, 20 segments": splines(segments=20), "binned, 32": binned()}


def main(seeds=4):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0]); ap.add_argument("--seeds", type=int, default=seeds)
    global rng
    n = ap.parse_args().seeds
    for kind, f in KINDS.items():
        res = {c: [] for c in CANDIDATES}
        for seed in range(n):   # the data drawn afresh: each candidate's error varies from draw to draw
            rng = np.random.default_rng(seed)
            tr = X(20000); model = HistGradientBoostingRegressor(random_state=0).fit(tr, f(tr))
            ref = X(10000); yr = f(ref); pr = model.predict(ref); e = yr - pr
            Zr, T = np.column_stack([ref, pr]), np.column_stack([np.abs(e), e ** 2])
            wins = []
            for k in range(10):
                w = X(5000, 0.3 * k); pw = model.predict(w); wins.append((np.column_stack([w, pw]), f(w) - pw))
            for name, (fit, predict) in CANDIDATES.items():
                t = time.perf_counter(); m = fit(Zr, T); tf = time.perf_counter() - t; t = time.perf_counter(); err = []
                for Z, ew in wins:
                    p = np.clip(predict(m, Z), 0, None)
                    err.append((abs(p[:, 0].mean() - np.abs(ew).mean()), abs(np.sqrt(p[:, 1].mean()) - np.sqrt((ew ** 2).mean()))))
                res[name].append((tf, time.perf_counter() - t, *np.mean(err, axis=0)))
        print(f"\n== {kind}, {n} draws: time to fit | to estimate 10 windows | mean absolute estimation error of MAE, of RMSE "
              "(against ours: the mean, and the range over draws)")
        ours = np.array(res["trees (ours)"])
        for name, r in res.items():
            r = np.array(r); q, qr = r[:, 2] / ours[:, 2], r[:, 3] / ours[:, 3]
            print(f"  {name:24} {r[:, 0].mean():6.3f} s | {r[:, 1].mean():6.3f} s | MAE {r[:, 2].mean():.4f} ({r[:, 2].mean() / ours[:, 2].mean():.1f}x ours; "
                  f"{q.min():.1f}-{q.max():.1f}x), RMSE {r[:, 3].mean():.4f} ({r[:, 3].mean() / ours[:, 3].mean():.1f}x; {qr.min():.1f}-{qr.max():.1f}x)")


if __name__ == "__main__":
    main()
