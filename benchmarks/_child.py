"""Helpers of the benchmarks' child processes: memory from /proc, and the one result line the parent reads.
Only the standard library: the children also run in the anchors' own venvs (Evidently, Great Expectations)."""
import json, resource


def status(key):
    "A /proc/self/status field (VmRSS, VmHWM, ...) in MB."
    for line in open("/proc/self/status"):
        if line.startswith(key): return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak():
    "Collect garbage, reset the high-water mark (VmHWM) to the current RSS, and return that RSS in MB."
    import gc
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
    except OSError: pass
    return status("VmRSS")


def maxrss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**kw): print("RESULT " + json.dumps(kw), flush=True)


def venv_python(env, requirements, python, probe, name):
    """The Python of an anchor's own venv at `env` (a Path), made from `requirements` with `python` on first use; `probe` is
    the code that must run in it (its imports). Exits with pip's error when it cannot be made."""
    import subprocess, sys
    py = env / "bin" / "python"
    ok = lambda: py.is_file() and subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0
    if ok(): return py
    print(f"creating the {name} venv at {env} (once) ...", flush=True)
    subprocess.run([python, "-m", "venv", "--clear", str(env)], check=True, capture_output=True)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)], capture_output=True, text=True)
    if r.returncode or not ok(): sys.exit(f"could not create the {name} venv:\n{r.stderr[-3000:]}")
    return py
