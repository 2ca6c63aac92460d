"""The installed package: pipelines shipped inside it, a light import, a working command."""
import subprocess, sys, zipfile

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
