"""Shared fixtures: a fresh demo project per test, and helpers to run the real `mlops-nb` and `papermill` commands."""
import json, os, subprocess, sys
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
