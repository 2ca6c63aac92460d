"""optuna-dashboard, started for real on a study storage (the README's way to look at a study), read through its JSON API."""
import contextlib, json, urllib.request
from pathlib import Path

from conftest import BIN, free_port, serving


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r: return json.loads(r.read())


@contextlib.contextmanager
def optuna_dashboard(storage: str, log: Path):
    "`optuna-dashboard STORAGE` on a free loopback port; yields a function `study(name)` -> (its summary, its detail with trials)."
    port = free_port(); url = f"http://127.0.0.1:{port}"
    with serving([BIN / "optuna-dashboard", storage, "--host", "127.0.0.1", "--port", port], f"{url}/api/meta", log, timeout=60):
        def study(name):
            summary = next(s for s in _get(f"{url}/api/studies")["study_summaries"] if s["study_name"] == name)
            return summary, _get(f"{url}/api/studies/{summary['study_id']}")
        yield study
