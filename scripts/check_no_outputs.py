"""Fail when a notebook under the given folders carries outputs or execution counts (nbdev-clean keeps them)."""
import json, sys
from pathlib import Path

bad = []
for root in sys.argv[1:] or ["nbs"]:
    for p in sorted(Path(root).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in p.parts: continue
        for i, c in enumerate(json.loads(p.read_text())["cells"]):
            if c.get("outputs") or c.get("execution_count"): bad.append(f"{p} cell {i}")
if bad:
    print("error: notebooks carry outputs (clear them before committing):\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"ok: no outputs in notebooks under {' '.join(sys.argv[1:] or ['nbs'])}")
