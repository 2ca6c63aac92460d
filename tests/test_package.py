"""The installed package: pipelines shipped inside it, a light import, a working command."""
import subprocess, sys, zipfile
from pathlib import Path

from conftest import BIN, run

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
