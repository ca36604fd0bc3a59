"""The ablation/baseline/depth study on offline data, and the measured parts of docs/results.md.

Trains the grid of ``study_grid.py`` (finished runs are reused, so an interrupted study
continues), then fills the marked blocks of ``docs/results.md`` (``study_report.py``); the prose
of the document is written by hand. Runs on the installed package, from the repository root::

    python experiments/study.py --out runs/study --data-dir runs/data --seeds 3 --workers 2
    python experiments/study.py --study conv --out runs/conv_study --data-dir runs/data
    python experiments/study.py --out runs/study --report-only     # refill from finished runs

The MLP study fills the ``results:`` blocks, the conv-net study the ``conv:`` blocks.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from study_grid import STUDIES, run_study
from study_report import ReportError, write_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="experiments/study.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", default="runs/study", help="folder of the study's runs (finished runs are reused)"
    )
    p.add_argument(
        "--data-dir",
        default="data",
        help="dataset root (digits_dvs recordings are generated there)",
    )
    p.add_argument(
        "--study", default="mlp", choices=list(STUDIES), help="the MLP or the conv-net grid"
    )
    p.add_argument("--datasets", nargs="+", default=["digits", "digits_dvs"])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per cell")
    p.add_argument(
        "--workers", type=int, default=2, help="parallel single-threaded training processes"
    )
    p.add_argument(
        "--report", default="docs/results.md", help="the document whose blocks are filled"
    )
    p.add_argument(
        "--report-only", action="store_true", help="only refill the document from finished runs"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Train the study (unless ``--report-only``) and fill the report; returns the exit status."""
    p = parser()
    args = p.parse_args(argv)
    if args.seeds < 1 or args.workers < 1:
        p.error("--seeds and --workers must be >= 1")
    study = STUDIES[args.study]
    unknown = sorted(set(args.datasets) - set(study.datasets))
    if unknown:
        p.error(f"--datasets: {', '.join(unknown)} not in the {args.study} study's datasets")
    out = Path(args.out)
    wall_file = out / "study_wall.json"
    if not args.report_only:
        start = time.perf_counter()
        run_study(args.study, out, args.data_dir, args.datasets, args.seeds, args.workers)
        wall_s = time.perf_counter() - start
        wall_file.write_text(json.dumps({"wall_s": wall_s}))
        print(f"total time of this call: {wall_s / 60:.1f} min")
    wall = json.loads(wall_file.read_text())["wall_s"] if wall_file.exists() else None
    command = (
        f"python experiments/study.py --study {args.study} --out {args.out} "
        f"--data-dir {args.data_dir} "
        f"--datasets {' '.join(args.datasets)} --seeds {args.seeds} "
        f"--workers {args.workers} --report {args.report}"
    )
    try:
        report = write_report(study, out, Path(args.report), command, wall)
    except ReportError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
