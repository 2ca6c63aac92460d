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
