"""optuna-dashboard, started for real on a study storage (the README's way to look at a study), read through its JSON API."""
import contextlib, json, subprocess, sys, time, urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r: return json.loads(r.read())


@contextlib.contextmanager
def optuna_dashboard(storage: str, log: Path):
    "`optuna-dashboard STORAGE` on a free loopback port; yields a function `study(name)` -> (its summary, its detail with trials)."
    port, out = _free_port(), open(log, "w")
    proc = subprocess.Popen([BIN / "optuna-dashboard", storage, "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try: _get(f"{url}/api/meta"); break
            except OSError: pass
            assert proc.poll() is None, f"optuna-dashboard exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "optuna-dashboard did not answer within 60 s"
            time.sleep(0.3)
        def study(name):
            summary = next(s for s in _get(f"{url}/api/studies")["study_summaries"] if s["study_name"] == name)
            return summary, _get(f"{url}/api/studies/{summary['study_id']}")
        yield study
    finally:
        proc.terminate()
        try: proc.wait(15)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        out.close()
