"""The installed package: pipelines shipped inside it, a light import, a working command."""
import subprocess, sys, zipfile
from pathlib import Path

import pytest

from conftest import BIN, run

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("papermill", "optuna", "matplotlib", "jupyter_client", "ipykernel", "nbformat", "mlflow", "sklearn")


def test_import_is_light():
    code = "import sys, mlops_nb, mlops_nb.config; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing mlops_nb loaded {out}"


def test_wheel_ships_pipeline_notebooks(tmp_path):
    p = run([BIN / "uv", "build", "--wheel", "--out-dir", tmp_path, "."], cwd=".")
    assert p.returncode == 0, p.stderr
    (whl,) = tmp_path.glob("mlops_nb-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert "mlops_nb/pipelines/train.ipynb" in names
    assert "mlops_nb/cli.py" in names


@pytest.mark.slow
def test_demo_from_the_wheel_closes_the_loop(tmp_path):
    """As a user installs it: `pip install mlops-nb` from the built wheel (not editable) into a new virtual environment
    (versions from constraints.txt); `mlops-nb demo` then runs the whole lifecycle from an empty folder with the pipeline
    notebooks the wheel ships (not the checkout's): train, the gate (a dummy refused), serve, a shifted period with labels
    through the service, monitor, and one ct tick that retrains and promotes while the running service follows."""
    import json, os
    from conftest import client, latest_result
    p = run([BIN / "uv", "build", "--wheel", "--out-dir", tmp_path / "dist", "."], cwd=ROOT)
    assert p.returncode == 0, p.stderr
    (whl,) = (tmp_path / "dist").glob("mlops_nb-*.whl")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_", "VIRTUAL_ENV")) and k != "PYTHONPATH"}
    venv, here = tmp_path / "venv", tmp_path / "user"
    here.mkdir()
    assert run([BIN / "uv", "venv", "-q", "--python", sys.executable, venv], tmp_path, env).returncode == 0
    p = run([BIN / "uv", "pip", "install", "-q", "--python", venv / "bin" / "python", "-c", ROOT / "constraints.txt", whl], tmp_path, env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    code = "import mlops_nb, mlops_nb.pipeline as p; print(mlops_nb.__file__); print(p.pipeline_path('train'))"
    where = run([venv / "bin" / "python", "-c", code], here, env).stdout.split()
    site = str(venv / "lib")
    assert len(where) == 2 and all(w.startswith(site) for w in where), where       # installed files, not the checkout
    p = run([venv / "bin" / "mlops-nb", "demo"], here, env, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    d = here / "demo"
    assert "failed, as it should" in p.stdout                                       # the gate refused the dummy ...
    mvs = {str(v.version): v.tags for v in client(d).search_model_versions("name='breast_cancer'")}
    assert mvs["3"]["verdict"] == "failed"                                          # ... version 3, and version 2 stayed champion
    from mlops_nb.cli import DEMO_SHIFTED
    mon = latest_result(d, "monitor")
    assert mon["drift_detected"] and mon["performance_degraded"] and mon["model_version"] == "2"
    assert set(mon["drifted_features"]) <= set(DEMO_SHIFTED) and len(mon["drifted_features"]) >= 5
    tick = latest_result(d, "ct")
    assert tick["status"] == "promoted" and tick["champion_before"] == "2"
    assert {"data", "performance", "drift"} <= set(tick["fired"])
    new = tick["model_version"]
    assert str(client(d).get_model_version_by_alias("breast_cancer", "champion").version) == new == "4"   # the retrained version
    assert f"the service now answers with version {new}" in p.stdout              # ... and the running service reported it
    assert mvs[new]["ct_triggers"] == ",".join(tick["fired"]) and mvs[new]["verdict"] == "passed"
    assert int(mvs[new]["data_rows"]) == 569 + 300                                  # trained on the data with the new period
    assert (d / "workspace" / "monitoring" / "breast_cancer-latest.html").read_text().count("<img") >= 5


def test_setup_refuses_an_untested_python(tmp_path):
    "`PYTHON=python3.10 bash scripts/dev setup`: exit 2 naming the tested Pythons, and no venv made."
    import os
    py = next(iter(sorted(Path("/root/.pyenv/versions").glob("3.10.*/bin/python3.10"))), None)
    if py is None: pytest.skip("no Python 3.10 on this machine (pyenv's is looked for)")
    p = run(["bash", ROOT / "scripts" / "dev", "setup"], ROOT, {**os.environ, "PYTHON": str(py), "MLOPS_NB_VENV": str(tmp_path / "venv")})
    assert p.returncode == 2 and "is Python 3.10; mlops_nb is tested on Python 3.11, 3.12, 3.13" in p.stderr, p.stderr
    assert not (tmp_path / "venv").exists()


def test_help_reads_well():
    p = run([BIN / "mlops-nb", "run", "--help"], cwd=".")
    assert p.returncode == 0
    assert "train" in p.stdout and "-p NAME VALUE" in p.stdout


def test_scheduling_examples_are_valid():
    "The scheduled CI workflow runs the tick; the Airflow DAG example compiles and runs the same pipelines."
    import py_compile, yaml
    root = Path(__file__).parents[1]
    wf = yaml.safe_load((root / ".github" / "workflows" / "ct.yml").read_text())
    steps = " ".join(str(s.get("run", "")) for s in wf["jobs"]["tick"]["steps"])
    assert wf[True]["schedule"][0]["cron"] and "mlops-nb ct" in steps and "scripts/dev setup" in steps   # `on:` reads as True
    py_compile.compile(str(root / "examples" / "airflow" / "mlops_nb_ct.py"), doraise=True)
    dag = (root / "examples" / "airflow" / "mlops_nb_ct.py").read_text()
    assert all(f'run_pipeline("{p}"' in dag for p in ("monitor", "train", "validate"))


def _code_only(src: str) -> str:
    "An exported cell with its string literals blanked: what the library writes (a project's notebook template, a message) names modules without importing them."
    import io, tokenize
    strings = {tokenize.STRING, getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_MIDDLE", -1), getattr(tokenize, "FSTRING_END", -1)}
    lines = src.splitlines(keepends=True)
    try: spans = [(t.start, t.end) for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type in strings]
    except (tokenize.TokenError, SyntaxError): return src
    offset = [0]
    for l in lines: offset.append(offset[-1] + len(l))
    out = list(src)
    for (r0, c0), (r1, c1) in spans:
        for k in range(offset[r0 - 1] + c0, offset[r1 - 1] + c1): out[k] = " " if out[k] != "\n" else "\n"
    return "".join(out)


def _notebook_imports(nb: Path) -> set:
    "The mlops_nb modules that any code cell of notebook `nb` imports (exported or example)."
    import json, re
    cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    src = "\n".join(_code_only(c) if re.match(r"#\|\s*export", c) else c for c in cells)
    mods = set(re.findall(r"\bmlops_nb\.(\w+)", src))
    for names in re.findall(r"from mlops_nb import ([\w, ()]+)", src): mods |= {n.strip(" ()") for n in names.split(",")}
    return mods


def test_notebooks_read_in_order():
    "A reader of notebook N needs only the notebooks before it: no notebook imports a module exported by a later one."
    import json, re
    root = Path(__file__).parents[1] / "nbs"
    order = {}
    for nb in sorted(root.glob("*.ipynb")):
        m = re.search(r"^#\|\s*default_exp\s+(\S+)", "".join(json.loads(nb.read_text())["cells"][0]["source"]), re.M)
        if m: order[m[1]] = nb.name
    assert {"config", "data", "report", "registry", "checks", "train", "serve", "monitor", "pipeline", "cli"} <= set(order)
    later = [f"{nb.name} imports mlops_nb.{mod} ({order[mod]})" for nb in sorted(root.glob("*.ipynb"))
             for mod in sorted(_notebook_imports(nb)) if mod in order and order[mod] > nb.name]
    assert not later, "forward references: " + "; ".join(later)
