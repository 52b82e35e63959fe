"""`coarchive run`: one incremental nightly run of every stage over a data root."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

STAGE_NAMES = ("ingest", "embed", "index", "archives", "banks", "evaluate", "publish")  # state.STAGES, unimported
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run holds the data root; try again later
EXIT_FAILED = 1


def cmd_run(args: argparse.Namespace) -> int:
    """Run the nightly flow once as the partition runs/RUN/: ingest new URL lists, embed new shards, add them to the
    index (retraining on drift), refresh the archives, rebuild the banks whose archives changed, evaluate, publish
    runs/latest.json. Finished work is skipped, so a rerun after a failure or a kill resumes; a run with no new data
    does nothing and says so."""
    from pipeline.app.nightly.config import load_config
    from pipeline.app.nightly.lock import RootLockedError
    from pipeline.app.nightly.run import run_nightly
    from pipeline.app.nightly.run_manifest import manifest_path

    config = load_config(args.config, root=args.root)
    run = args.run or dt.date.today().isoformat()
    try:
        report = run_nightly(
            config, run, stages=args.stage, scheduler=args.scheduler, progress=not getattr(args, "quiet", False)
        )
    except RootLockedError as error:
        print(f"coarchive: error: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except RuntimeError as error:  # a stage failed (InjectedFaultError, StageTasksFailedError, ...)
        print(f"coarchive: run {run} failed: {error} (see {manifest_path(config.root, run)})", file=sys.stderr)
        return EXIT_FAILED
    manifest = manifest_path(config.root, run)
    if report.already_done and len(report.already_done) == len(report.outcomes):
        print(f"run {run}: every stage had already finished; nothing to do ({manifest})")
    elif report.noop:
        print(f"run {run}: {report.messages['publish']}; manifest {manifest}")
    else:
        print(f"run {run}: finished {', '.join(report.outcomes)} in {report.seconds:.1f} s; manifest {manifest}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `coarchive run` on the `coarchive` parser."""
    run = commands.add_parser("run", help="one incremental nightly run (all stages)", description=cmd_run.__doc__)
    run.add_argument(
        "--config", required=True, help="nightly config YAML (see pipeline/app/nightly/nightly.example.yaml)"
    )
    run.add_argument("--root", default=None, help="data root (overrides the config's 'root')")
    run.add_argument("--run", default=None, help="run partition, e.g. 2026-11-22 (default: today's date)")
    run.add_argument(
        "--stage",
        action="append",
        choices=STAGE_NAMES,
        default=None,
        help="run only this stage (repeatable); the earlier stages of the run must have finished",
    )
    run.add_argument("--scheduler", default=None, help="Dask scheduler address for embed and index, tcp://host:8786")
    run.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    run.set_defaults(func=cmd_run)
