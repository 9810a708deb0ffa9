#!/usr/bin/env python3
"""Where one gunicorn worker spends its time on the loan lifecycle.

Run from the repository root: `.venv/bin/python bench/profile_lifecycle.py
[--lifecycles N] [--sort tottime|cumulative] [--top K] [--no-profile] [--keep-database]`.

It prepares `ydx_bench` as `bench/lifecycle.py` does (unless `--keep-database`), starts
gunicorn with ONE sync worker and drives the same centralized lifecycle (same bodies,
same requests) from one client thread: a warm-up, then N measured lifecycles.

- default: the measured requests run under cProfile inside the worker
  (`bench/gunicorn_profile.py`); it prints Python calls per lifecycle — a figure that does
  not depend on how busy the machine is — and the top functions.
- `--no-profile`: the worker's CPU time per lifecycle and per request, from /proc.

Compare call counts or worker CPU between two versions of the code to judge a change.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lifecycle as bench

REQUESTS_PER_LIFECYCLE = 12


def worker_pid(master: int) -> int:
    """The single worker of a gunicorn master."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process."""
    stat = bench._proc_stat(pid)
    if stat is None:
        raise RuntimeError(f"process {pid} is gone")
    return stat[2]


def _profile_only(client: bench.Client, kind: str) -> None:
    """Send `X-Profile: 1` only with the requests of one kind."""
    call = client.call

    def tagged(kind_: str, *args: object, **kwargs: object) -> bench.Reply:
        client.extra_headers = {"X-Profile": "1"} if kind_ == kind else {}
        return call(kind_, *args, **kwargs)  # type: ignore[arg-type]

    client.call = tagged  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true", help="only measure the worker's CPU")
    parser.add_argument("--keep-database", action="store_true", help="reuse ydx_bench as it is")
    parser.add_argument("--cpu", action="store_true", help="profile CPU time instead of wall time")
    parser.add_argument("--save", metavar="FILE", help="also keep the raw profile (pstats format) in FILE")
    parser.add_argument(
        "--only",
        metavar="KIND",
        choices=("submit", "list", "complete", "detail"),
        help="profile only the requests of one kind (submit, list, complete, detail)",
    )
    args = parser.parse_args(argv)
    if args.lifecycles < 1 or args.warmup < 0:
        parser.error("counts must be positive")

    if not args.keep_database:
        bench.prepare_database()
    with tempfile.TemporaryDirectory(prefix="ydx-profile-") as tmp:
        os.environ["YDX_PROFILE_DIR"] = tmp
        os.environ["YDX_PROFILE_CPU"] = "1" if args.cpu else "0"
        extra = () if args.no_profile else ("-c", str(Path(__file__).resolve().parent / "gunicorn_profile.py"))
        recorder = bench.Recorder()
        with bench.gunicorn(1, 1, Path(tmp), extra_args=extra) as server:
            client = bench.Client(server, recorder)
            staff = bench.login_all(client)
            seq = int(time.time()) % 10**5 * 100
            for offset in range(args.warmup):
                if not bench.run_lifecycle(client, staff, seq + offset):
                    print("warm-up failed:", *recorder.errors, sep="\n")
                    return 1
            seq += args.warmup
            pid = worker_pid(server.pid)
            if args.only:
                _profile_only(client, args.only)
            else:
                client.extra_headers = {"X-Profile": "1"}
            cpu_before, started = cpu_seconds(pid), time.perf_counter()
            ok = all(bench.run_lifecycle(client, staff, seq + i) for i in range(args.lifecycles))
            cpu, elapsed = cpu_seconds(pid) - cpu_before, time.perf_counter() - started
            client.close()
        if not ok:
            print("lifecycle failed:", *recorder.errors, sep="\n")
            return 1
        measured = recorder.samples[-args.lifecycles * REQUESTS_PER_LIFECYCLE :]
        statements = sum(s.sql_statements or 0 for s in measured) / args.lifecycles
        print(
            f"{args.lifecycles} lifecycles, one client, one sync worker{' under cProfile' if not args.no_profile else ''}: "
            f"{1000 * elapsed / args.lifecycles:.1f} ms wall, worker CPU {1000 * cpu / args.lifecycles:.1f} ms "
            f"per lifecycle ({1000 * cpu / args.lifecycles / REQUESTS_PER_LIFECYCLE:.2f} ms per request), "
            f"{statements:.1f} SQL statements per lifecycle"
        )
        if args.no_profile:
            return 0
        files = list(Path(tmp).glob("worker-*.prof"))
        if not files:
            print("the worker wrote no profile")
            return 1
        if args.save:
            shutil.copyfile(files[0], args.save)
        out = io.StringIO()
        stats = pstats.Stats(str(files[0]), stream=out)
        print(f"{stats.total_calls / args.lifecycles:,.0f} Python calls per lifecycle")
        stats.sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
