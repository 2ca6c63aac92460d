"""Validate pipeline (gate + HTML report) against plain scikit-learn evaluation of both models plus notebook start-up.

Anchor: a plain Python script that loads the champion and challenger and computes the same metrics with
scikit-learn on the same held-out rows (what a user would write by hand), plus the fixed start-up of a notebook
run (`mlops-nb run` on a one-cell notebook). Goal (issue 4): `mlops-nb run validate` <= 2x that.

    .venv/bin/python benchmarks/bench_validate.py [--repeat 3]
"""
import argparse, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}
BIN = Path(sys.executable).parent

PLAIN = """
import mlflow, pandas as pd
from sklearn import metrics as M
from sklearn.model_selection import train_test_split
mlflow.set_registry_uri("sqlite:///workspace/mlflow.db")
df = pd.read_csv("data/breast_cancer.csv")
X, y = df.drop(columns="diagnosis"), df["diagnosis"]
_, Xt, _, yt = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
for v in (1, 2):
    m = mlflow.sklearn.load_model(f"models:/breast_cancer/{v}")
    p, pr = m.predict(Xt), m.predict_proba(Xt)
    print(v, M.accuracy_score(yt, p), M.f1_score(yt, p, average="macro"), M.roc_auc_score(yt, pr[:, 1]), M.log_loss(yt, pr))
"""


def timed(cmd, cwd, ok=(0,)):
    t0 = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode not in ok: sys.exit(f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return dt


def main(repeat):
    from mlops_nb.cli import make_demo_project
    proj = make_demo_project(Path(tempfile.mkdtemp()) / "demo")
    cli = BIN / "mlops-nb"
    timed([cli, "run", "train", "-p", "estimator", "logistic_regression"], proj)
    timed([cli, "run", "train"], proj)
    timed([cli, "run", "validate", "-p", "candidate", "1"], proj)          # version 1 becomes champion
    (proj / "plain_eval.py").write_text(PLAIN)
    one = proj / "one_cell.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), one)
    plain, startup, ours = [], [], []
    for i in range(repeat):
        plain.append(timed([sys.executable, proj / "plain_eval.py"], proj))
        startup.append(timed([cli, "run", one], proj))
        # validate whichever version is not champion; it passes or fails, the work is the same
        champion = subprocess.run([sys.executable, "-c", "import mlflow; c = mlflow.MlflowClient('sqlite:///workspace/mlflow.db'); "
                                   "print(c.get_model_version_by_alias('breast_cancer', 'champion').version)"],
                                  cwd=proj, env=CLEAN_ENV, capture_output=True, text=True).stdout.strip()
        ours.append(timed([cli, "run", "validate", "-p", "candidate", "2" if champion == "1" else "1"], proj, ok=(0, 1)))
    p, s, o = map(statistics.median, (plain, startup, ours))
    print(f"validate, demo data (114 held-out rows), median of {repeat}:")
    print(f"  plain scikit-learn evaluation of both models (script)  {p:6.2f} s")
    print(f"  notebook start-up (mlops-nb run, one cell)             {s:6.2f} s")
    print(f"  anchor = evaluation + start-up                         {p + s:6.2f} s")
    print(f"  mlops-nb run validate (gate, slices, importance, report) {o:5.2f} s   ratio {o / (p + s):.2f}x (goal <= 2.0x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    main(ap.parse_args().repeat)
