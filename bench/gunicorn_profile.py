"""gunicorn settings for `bench/profile_lifecycle.py`: requests that carry
`X-Profile: 1` run under one cProfile per worker, written to
`$YDX_PROFILE_DIR/worker-<pid>.prof` when the worker exits. With `YDX_PROFILE_CPU=1` the
profile counts CPU time (waits for PostgreSQL and the client do not count)."""

import cProfile
import os
import time

_profile = cProfile.Profile(time.process_time) if os.environ.get("YDX_PROFILE_CPU") == "1" else cProfile.Profile()
_active: list[bool] = []


def pre_request(worker, req):  # type: ignore[no-untyped-def]
    """Profile this request if the client asked for it."""
    if ("X-PROFILE", "1") in req.headers:
        _active.append(True)
        _profile.enable()


def post_request(worker, req, environ, resp):  # type: ignore[no-untyped-def]
    """Stop profiling after the response was written."""
    if _active:
        _profile.disable()
        _active.clear()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """Write what was collected."""
    _profile.dump_stats(os.path.join(os.environ["YDX_PROFILE_DIR"], f"worker-{os.getpid()}.prof"))
