"""Time ``kefu recommend predict`` on every Ta-Feng customer (13,858), beside the baselines on the same data.

    .venv/bin/python bench/recommend_speed.py [--data ../shared/data/tafeng_nbr] [--k 20] [--out FILE.json]

The recommender runs as the command an outside scorer runs (a fresh process: imports, reading the file, fitting
every signal and the blend, ranking, writing), timed on the wall clock and in CPU seconds (user + system of the
child), with the machine's load average, because the 2 cores are shared. The baselines are timed in this process
from the already-read baskets (G-TopFreq, P-TopFreq, GP-TopFreq, implicit ALS). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recommend import baselines
from recommend.baskets import from_layout, read_layout

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "tafeng_nbr"


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.is_dir() else Path("/work/shared/data/tafeng_nbr")
    )
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    history_path = args.data / "history.json"
    history = read_layout(history_path)
    users = list(history)
    with tempfile.TemporaryDirectory() as tmp:
        users_path, out_path = Path(tmp) / "users.json", Path(tmp) / "pred.json"
        users_path.write_text(json.dumps(users))
        load_before = os.getloadavg()
        cpu0, wall0 = _cpu_children(), time.perf_counter()
        command = [sys.executable, "-c", "from ui.cli import main; main()", "recommend", "predict",
                   "--history", str(history_path), "--users", str(users_path), "--k", str(args.k),
                   "--out", str(out_path)]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        wall, cpu = time.perf_counter() - wall0, _cpu_children() - cpu0
        predicted = json.loads(out_path.read_text())
    b = from_layout(history)
    timed = {}
    for name, fn in {
        "G-TopFreq": lambda: baselines.g_topfreq(b, users, args.k),
        "P-TopFreq": lambda: baselines.p_topfreq(b, users, args.k),
        "GP-TopFreq": lambda: baselines.gp_topfreq(b, users, args.k),
        "implicit-ALS": lambda: baselines.als_topk(b, users, args.k, 3.0),
    }.items():
        start = time.perf_counter()
        fn()
        timed[name] = round(time.perf_counter() - start, 2)
    report = {
        "customers": len(users),
        "predicted": len(predicted),
        "k": args.k,
        "kefu_recommend_predict": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "target_wall_s": 60},
        "baselines_wall_s": timed,
        "baselines_note": "in-process, from baskets already read (add the ~3 s JSON read for a like-for-like run)",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },  # fmt: skip
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
