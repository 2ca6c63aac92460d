"""Shared fixtures: a fresh demo project per test, and helpers to run the real `mlops-nb` and `papermill` commands."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture
def clean_env(monkeypatch):
    "The environment without settings that would point a test at another store (MLflow exports its URIs when used in-process)."
    for k in list(os.environ):
        if k.startswith(("MLOPS_NB_", "MLFLOW_")): monkeypatch.delenv(k)
    return os.environ


@pytest.fixture
def project(tmp_path, clean_env, monkeypatch):
    "A fresh demo project (settings.ini + data/breast_cancer.csv); the tests run inside it."
    from mlops_nb.cli import make_demo_project
    p = make_demo_project(tmp_path / "proj")
    monkeypatch.chdir(p)
    return p


def run(cmd, cwd, env=None, timeout=300):
    "Run a real command; return the CompletedProcess (text)."
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def mlops_nb(*args, cwd, env=None, timeout=300):
    return run([BIN / "mlops-nb", *args], cwd, env, timeout)


def versions(project, name="breast_cancer"):
    "The registered versions of `name` in the project's workspace store."
    if not (project / "workspace" / "mlflow.db").exists(): return []
    return sorted(int(v.version) for v in client(project).search_model_versions(f"name='{name}'"))


@pytest.fixture
def use_store(project):
    "Point this process's MLflow (tracking and registry) at the project's store, and back afterwards."
    import mlflow
    uri = f"sqlite:///{project / 'workspace' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None); mlflow.set_registry_uri(None)


def client(project):
    from mlflow import MlflowClient
    uri = f"sqlite:///{project / 'workspace' / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def relocated_copy(src: Path, dst: Path) -> Path:
    """A copy of project `src` at `dst` that knows it is there. MLflow's store and the workspace's records hold absolute
    paths (artifact locations, report paths): rewritten in every SQLite file and text file. Fails, naming the file, if
    `src`'s path is left anywhere, so that no copy writes into `src`."""
    import sqlite3
    old, new = str(src), str(dst)
    assert old not in new, f"{dst} is named after {src}: its own path could not be told from the template's"
    shutil.copytree(src, dst, symlinks=True)
    for f in (f for f in dst.rglob("*") if f.is_symlink()):   # a link into the template points into the copy
        if old in (t := os.readlink(f)): f.unlink(); f.symlink_to(t.replace(old, new))
    for f in (f for f in dst.rglob("*") if f.is_file() and not f.is_symlink()):
        data = f.read_bytes()
        if data.startswith(b"SQLite format 3\0"):
            con = sqlite3.connect(f)
            for (t,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
                for c in [r[1] for r in con.execute(f'pragma table_info("{t}")')]:
                    con.execute(f"""update "{t}" set "{c}" = replace("{c}", ?, ?) where typeof("{c}") = 'text' and instr("{c}", ?)""", (old, new, old))
            con.commit(); con.execute("vacuum"); con.close()    # vacuum: no old text left in free pages
        elif old.encode() in data:
            try: f.write_text(data.decode().replace(old, new))
            except UnicodeDecodeError: pass
        assert old.encode() not in f.read_bytes(), f"{f} still names {old}"
    return dst


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    """`mlops-nb demo --no-loop`, once per test run: breast_cancer versions 1 (logistic regression), 2 (gradient boosting,
    the champion) and 3 (a dummy the gate refused). The first test worker to ask builds it under a lock, the others wait
    for it. Use a `relocated_copy`, never the template itself."""
    import fcntl
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"): root = root.parent   # the workers' base temps share this folder
    d = root / "demo-template" / "demo"
    with open(root / "demo-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "demo-template" / "built").exists():
            shutil.rmtree(d.parent, ignore_errors=True); d.parent.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_NB_"))}
            p = run([BIN / "mlops-nb", "demo", "--dir", d, "--no-loop"], cwd=d.parent, env=env, timeout=600)
            assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
            (root / "demo-template" / "built").touch()
    return d


def latest_result(project, pipeline="train"):
    return json.loads((project / "workspace" / "results" / f"{pipeline}.json").read_text())


def free_port() -> int:
    "A free TCP port on 127.0.0.1."
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


import contextlib


@contextlib.contextmanager
def serving(cmd, ready_url: str, log: Path, cwd=None, env=None, timeout: float = 120):
    "Start server `cmd` (output to `log`), wait until `ready_url` answers 200 (failing with its log if it exits first), yield it, then stop it."
    import time, urllib.request
    out = open(log, "w")
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as r:
                    if r.status == 200: break
            except OSError: pass
            assert proc.poll() is None, f"{Path(str(cmd[0])).name} exited: {Path(log).read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"{Path(str(cmd[0])).name} did not answer {ready_url} within {timeout:.0f} s"
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try: proc.wait(30)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        out.close()
