#!/usr/bin/env python3
"""End-to-end throughput of the loan lifecycle, over HTTP and in the bare engine.

Run from the repository root: `.venv/bin/python bench/lifecycle.py [--lifecycles N]
[--clients C] [--workers W] [--worker-class gthread|sync]` (or `make bench`).

1. Engine floor: the same diagram driven in-process through SpiffWorkflow, no database,
   once as is and once with a `dump_state`/`load_state` round trip after every step.
2. A throw-away PostgreSQL database `ydx_bench` (dropped with FORCE, recreated, migrated,
   demo data seeded, processes deployed).
3. gunicorn with W workers (gthread × 1 thread by default, keep-alive; or sync) on a free
   loopback port (service tasks in-process, SQL counters on), C client threads, each with a
   lean keep-alive HTTP/1.1 connection (`KeepAlive`), driving N
   centralized HK lifecycles: submit → assign_officer → onsite_visit → collect_materials
   → approve ×2 → detail with stage `disbursement`.
4. Throughput, latency percentiles per endpoint kind, SQL statements/commits per request
   (from the `X-SQL-Statements` / `X-SQL-Commits` headers), CPU seconds of server,
   PostgreSQL and client, and the ratio to the engine floor.

Only loopback traffic; every loop is bounded in count and time; the server is always
stopped. Standard library plus what the project's venv holds.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
DB_NAME = "ydx_bench"
PG_SOCKET_DIR = "/var/run/postgresql"
# How the server reaches PostgreSQL (`--pg`): TCP on 127.0.0.1:5432, or the Unix socket a
# server on the same host offers (less kernel work per round trip on the shared cores).
PG_URLS = {
    "tcp": f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}",
    "socket": f"postgresql+psycopg://postgres@/{DB_NAME}?host={PG_SOCKET_DIR}",
}
DATABASE_URL = PG_URLS["tcp"]
PASSWORD = "demo1234"  # noqa: S105 - the documented demo password
LEAD = "lead_hka"
OFFICERS = ("officer_hka1", "officer_hka2")
APPROVERS = ("approver1", "approver2")
USERS = (LEAD, *OFFICERS, *APPROVERS)
APPROVER_ANSWERS = {"approver1": "100000", "approver2": "95000"}  # 5 % apart → rule "lowest", no escalation
DECISION_REFS = {"decide_amount": "loan_amount", "decide_term": "loan_term"}
TASKS_PER_LIFECYCLE = 5
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
MAX_ERROR_BODIES = 5
KINDS = ("login", "submit", "list", "complete", "detail")


# --- options and environment ------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Command-line settings."""

    lifecycles: int
    clients: int
    workers: int
    threads: int
    floor_lifecycles: int
    max_seconds: float
    worker_class: str = "gthread"
    pg: str = "tcp"
    request_floor_seconds: float = 5.0


def parse_options(argv: list[str] | None = None) -> Options:
    """Read the command line (defaults keep a run around a minute on 2 cores)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", "-n", type=int, default=200, help="HTTP lifecycles to drive (default 200)")
    parser.add_argument("--clients", "-c", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--workers", "-w", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per worker; > 1 uses gunicorn's gthread worker (default 1: sync)",
    )
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="gthread",
        help="gunicorn worker class; gthread keeps client connections alive (default gthread)",
    )
    parser.add_argument(
        "--floor-lifecycles", type=int, default=300, help="in-process engine lifecycles per floor variant (0 = skip)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=180.0, help="stop starting HTTP lifecycles after this long (default 180)"
    )
    parser.add_argument(
        "--pg",
        choices=tuple(PG_URLS),
        default="tcp",
        help=f"how the server reaches PostgreSQL: tcp (127.0.0.1:5432, default) or socket ({PG_SOCKET_DIR})",
    )
    parser.add_argument(
        "--request-floor-seconds",
        type=float,
        default=5.0,
        help="how long to drive the cheapest API request after the lifecycles (0 = skip; default 5)",
    )
    args = parser.parse_args(argv)
    if args.lifecycles < 0 or args.clients < 1 or args.workers < 1 or args.threads < 1 or args.floor_lifecycles < 0:
        parser.error("counts must be positive")
    worker_class = "gthread" if args.threads > 1 else args.worker_class
    return Options(
        args.lifecycles,
        args.clients,
        args.workers,
        args.threads,
        args.floor_lifecycles,
        args.max_seconds,
        worker_class,
        args.pg,
        max(0.0, args.request_floor_seconds),
    )


def app_env(**extra: str) -> dict[str, str]:
    """The environment of the flask commands and the server: the bench database, no Redis."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "YDX_ENV")}
    env.update(DATABASE_URL=DATABASE_URL, SECRET_KEY="bench", **extra)  # noqa: S106 - throw-away database
    return env


def run_command(args: list[str], env: dict[str, str] | None = None, timeout: float = 120.0) -> str:
    """Run a command in the repository root; raise with its output when it fails."""
    done = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def psql(*sql: str) -> str:
    """Run statements as postgres on the local server (each its own -c, so DROP DATABASE works)."""
    binary = shutil.which("psql") or "/usr/bin/psql"
    args = [binary, "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtA"]
    for statement in sql:
        args += ["-c", statement]
    return run_command(args, timeout=60).strip()


def prepare_database() -> None:
    """Recreate `ydx_bench`, migrate it, seed the demo organisation, deploy bpmn/ + rules/."""
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", f"CREATE DATABASE {DB_NAME}")
    flask = [str(VENV_BIN / "flask"), "--app", "wsgi"]
    env = app_env()
    run_command([*flask, "db", "upgrade"], env)
    run_command([*flask, "seed-demo"], env)
    run_command([*flask, "process", "deploy"], env)


def machine_note() -> str:
    """One line: cores, CPU model, Python and PostgreSQL versions."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        postgres = psql("select version()")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        postgres = f"unknown ({exc.__class__.__name__})"
    try:
        load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"machine: nproc={os.cpu_count()} cpu={model!r} python={platform.python_version()} "
        f"({platform.python_implementation()}) postgres={postgres!r} loadavg={load}"
    )


# --- CPU accounting from /proc -------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, user+system CPU seconds) of a process, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _system_busy_seconds() -> float:
    """CPU seconds all cores spent outside idle/iowait since boot (first line of /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICKS


def cpu_snapshot(server_pid: int | None) -> dict[str, dict[int, float]]:
    """CPU seconds per pid: gunicorn (master and workers), PostgreSQL backends of the bench
    database, PostgreSQL's own background processes; and the whole machine's busy time."""
    snapshot: dict[str, dict[int, float]] = {
        "server": {},
        "postgres": {},
        "postgres_aux": {},
        "machine": {0: _system_busy_seconds()},
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _proc_stat(pid)
        if stat is None:
            continue
        name, ppid, seconds = stat
        if server_pid is not None and (pid == server_pid or ppid == server_pid):
            snapshot["server"][pid] = seconds
        elif name.startswith("postgres"):
            command = _cmdline(pid)
            if f" {DB_NAME} " in command:
                snapshot["postgres"][pid] = seconds
            elif "(" not in command and "[local]" not in command:  # not a client backend
                snapshot["postgres_aux"][pid] = seconds
    return snapshot


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds spent between two snapshots (processes that exited in between are missed)."""
    return {
        group: sum(seconds - before[group].get(pid, 0.0) for pid, seconds in after[group].items()) for group in after
    }


# --- the server ----------------------------------------------------------------------


def free_port() -> int:
    """A currently unused loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running gunicorn: where it listens and its master's pid."""

    host: str
    port: int
    pid: int
    log_path: Path


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def gunicorn(
    workers: int,
    threads: int,
    log_dir: Path,
    startup_seconds: float = 45.0,
    extra_args: tuple[str, ...] = (),
    worker_class: str = "sync",
    wsgi_app: str = "wsgi:app",
) -> Iterator[Server]:
    """Start gunicorn on the bench database, wait for /api/v1/health, always stop it."""
    port = free_port()
    log_path = log_dir / "gunicorn.log"
    env = app_env(YDX_SQL_STATS="1", YDX_PUBLIC_SUBMIT_LIMIT="1000000", YDX_LOGIN_MAX_FAILURES="1000")
    args = [
        str(VENV_BIN / "gunicorn"),
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        *extra_args,
        wsgi_app,
    ]
    if threads > 1 or worker_class == "gthread":
        args[1:1] = ["--worker-class", "gthread", "--threads", str(threads)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_healthy(process, port, log_path, startup_seconds)
        yield Server("127.0.0.1", port, process.pid, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log_path: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn not healthy after {limit:.0f} s:\n{_log_tail(log_path)}")


# --- the HTTP client and what it records -----------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it."""

    kind: str
    tag: str
    status: int
    seconds: float
    sql_statements: int | None
    sql_commits: int | None


@dataclass
class Recorder:
    """Thread-safe store of samples and errors."""

    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    reconnects: int = 0
    connections: int = 0
    task_lookup_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        """Keep one request's figures."""
        with self.lock:
            self.samples.append(sample)

    def error(self, message: str) -> None:
        """Count an error; keep the text of the first few."""
        with self.lock:
            self.error_count += 1
            if len(self.errors) < MAX_ERROR_BODIES:
                self.errors.append(message)

    def bump(self, counter: str) -> None:
        """Increase a named integer counter."""
        with self.lock:
            setattr(self, counter, getattr(self, counter) + 1)


@dataclass(frozen=True)
class Reply:
    """Status and decoded JSON body (None when not JSON)."""

    status: int
    body: Any
    text: str

    @property
    def ok(self) -> bool:
        """Any 2xx."""
        return 200 <= self.status < 300


def _int_header(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class KeepAlive:
    """A minimal HTTP/1.1 client on one kept-alive socket (Content-Length bodies only).

    The load generator shares the two cores with the server it measures: `http.client`
    spends ~0.2 ms of CPU per response parsing headers with the `email` package, CPU the
    server then lacks. This sends a request in one `sendall` and reads the status line,
    headers and `Content-Length` body itself; a `Connection: close` answer (the sync
    worker) closes the socket and the next request opens a new one."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self._buffer = b""

    def close(self) -> None:
        """Drop the connection."""
        if self.sock is not None:
            self.sock.close()
        self.sock, self._buffer = None, b""

    def exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request, return (status, lower-cased headers, body)."""
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body) if body else 0}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        buffer = self._buffer
        while b"\r\n\r\n" not in buffer:
            buffer += self._receive()
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        found: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            found[name.strip().lower()] = value.strip()
        if "chunked" in found.get("transfer-encoding", ""):
            raise http.client.HTTPException("chunked responses are not expected from this API")
        length = int(found.get("content-length", "0"))
        while len(buffer) < length:
            buffer += self._receive()
        payload, self._buffer = buffer[:length], buffer[length:]
        if found.get("connection", "").lower() == "close":
            self.close()
        return status, found, payload

    def _receive(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            self.close()
            raise http.client.RemoteDisconnected("the server closed the connection")
        return chunk


class Client:
    """One keep-alive connection (one per thread) that records every request."""

    RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def __init__(self, server: Server, recorder: Recorder, timeout: float = 60.0) -> None:
        self.conn = KeepAlive(server.host, server.port, timeout)
        self.recorder = recorder
        self.extra_headers: dict[str, str] = {}

    def close(self) -> None:
        """Drop the connection."""
        self.conn.close()

    def call(
        self, kind: str, method: str, path: str, body: Any = None, token: str | None = None, tag: str = ""
    ) -> Reply:
        """Send one request; any non-2xx is recorded as an error."""
        headers = {"Accept": "application/json", **self.extra_headers}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(2):
            reused = self.conn.sock is not None
            if not reused:
                self.recorder.bump("connections")
            started = time.perf_counter()
            try:
                status, response_headers, raw = self.conn.exchange(method, path, payload, headers)
            except self.RETRYABLE:
                self.conn.close()
                if attempt or not reused:  # only a kept-alive connection the server dropped is retried
                    raise
                self.recorder.bump("reconnects")
                continue
            elapsed = time.perf_counter() - started
            break
        text = raw.decode("utf-8", errors="replace")
        try:
            decoded = json.loads(text) if text else None
        except ValueError:
            decoded = None
        self.recorder.add(
            Sample(
                kind,
                tag,
                status,
                elapsed,
                _int_header(response_headers.get("x-sql-statements")),
                _int_header(response_headers.get("x-sql-commits")),
            )
        )
        reply = Reply(status, decoded, text)
        if not reply.ok:
            self.recorder.error(f"{method} {path} → {status}: {text[:400]}")
        return reply


# --- the lifecycle over HTTP ---------------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    """Bearer tokens and user ids of the demo users."""

    tokens: dict[str, str]
    ids: dict[str, int]


def login_all(client: Client) -> Staff:
    """Log every demo user in once."""
    tokens: dict[str, str] = {}
    ids: dict[str, int] = {}
    for username in USERS:
        reply = client.call("login", "POST", "/api/v1/auth/login", {"username": username, "password": PASSWORD})
        if not reply.ok:
            raise RuntimeError(f"login of {username} failed: {reply.status} {reply.text[:300]}")
        tokens[username] = reply.body["token"]
        ids[username] = int(reply.body["user"]["id"])
    return Staff(tokens, ids)


CHINESE_DIGITS = str.maketrans("0123456789", "〇一二三四五六七八九")


def id_number(seq: int) -> str:
    """A distinct valid 18-digit resident ID: Haikou area, a birth date and sequence from `seq`."""
    born = date(1970, 1, 1) + timedelta(days=seq // 1000)
    first17 = f"460100{born:%Y%m%d}{seq % 1000:03d}"
    check = ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]
    return first17 + check


def application_body(seq: int) -> dict[str, Any]:
    """A valid public HK application (default product BIZ-EQ)."""
    return {
        "name": "压测" + str(seq).translate(CHINESE_DIGITS),  # a name has no digits
        "phone": f"138{seq % 10**8:08d}",
        "id_number": id_number(seq),
        "region_code": "HK",
        "amount": "100000",
        "term_months": 12,
        "purpose": "进货周转",
        "channel": "bench",
        "consent": True,
        "credit_authorization": True,
    }


def find_task(
    client: Client, staff: Staff, username: str, scope: str, application_no: str, task_key: str
) -> int | None:
    """The open task of one application and key in `username`'s inbox (a few retries)."""
    path = f"/api/v1/tasks?scope={scope}&status=open&application_no={application_no}&task_key={task_key}"
    for attempt in range(4):
        reply = client.call("list", "GET", path, token=staff.tokens[username], tag=task_key)
        if not reply.ok:
            return None
        items = reply.body.get("items") or []
        if items:
            return int(items[0]["id"])
        client.recorder.bump("task_lookup_retries")
        time.sleep(0.05 * (attempt + 1))
    client.recorder.error(f"{username} never saw {task_key} of {application_no} in scope {scope}")
    return None


# The visit form takes a recent time, not one in the future.
VISITED_AT = (datetime.now(timezone(timedelta(hours=8))) - timedelta(days=1)).replace(microsecond=0).isoformat()


def lifecycle_steps(staff: Staff, seq: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(user, inbox scope, task_key, form) of the five task completions."""
    officer = OFFICERS[seq % len(OFFICERS)]
    steps: list[tuple[str, str, str, dict[str, Any]]] = [
        (LEAD, "candidate", "assign_officer", {"officer_id": staff.ids[officer]}),
        (officer, "mine", "onsite_visit", {"visited_at": VISITED_AT, "notes": "到访"}),
        (officer, "mine", "collect_materials", {"customer": {}, "attachments": [], "notes": ""}),
    ]
    for approver in APPROVERS:
        form = {"decision": "approve", "amount": APPROVER_ANSWERS[approver], "term_months": 12, "comment": ""}
        steps.append((approver, "mine", "approve", form))
    return steps


def run_lifecycle(client: Client, staff: Staff, seq: int) -> bool:
    """Submit, complete the five tasks, check the final stage; False at the first error."""
    reply = client.call("submit", "POST", "/api/v1/public/applications", application_body(seq))
    if not reply.ok:
        return False
    application_no = reply.body["application_no"]
    for username, scope, task_key, form in lifecycle_steps(staff, seq):
        task_id = find_task(client, staff, username, scope, application_no, task_key)
        if task_id is None:
            return False
        reply = client.call(
            "complete", "POST", f"/api/v1/tasks/{task_id}/complete", form, staff.tokens[username], tag=task_key
        )
        if not reply.ok:
            return False
    reply = client.call("detail", "GET", f"/api/v1/applications/{application_no}", token=staff.tokens[LEAD])
    if not reply.ok:
        return False
    if reply.body.get("stage") != "disbursement":
        client.recorder.error(f"{application_no} ended in stage {reply.body.get('stage')!r}, not 'disbursement'")
        return False
    return True


@dataclass
class HttpResult:
    """What the HTTP phase measured."""

    wall_seconds: float
    succeeded: int
    failed: int
    recorder: Recorder
    cpu: dict[str, float]
    client_cpu_seconds: float


def drive(server: Server, staff: Staff, options: Options, recorder: Recorder) -> HttpResult:
    """Run N lifecycles on C threads; no new lifecycle starts after `max_seconds`."""
    sequence = itertools.count()
    sequence_lock = threading.Lock()
    outcome = {"ok": 0, "failed": 0}
    outcome_lock = threading.Lock()
    deadline = time.monotonic() + options.max_seconds

    def next_seq() -> int | None:
        with sequence_lock:
            seq = next(sequence)
        return seq if seq < options.lifecycles and time.monotonic() < deadline else None

    def worker() -> None:
        client = Client(server, recorder)
        try:
            while (seq := next_seq()) is not None:
                try:
                    ok = run_lifecycle(client, staff, seq)
                except Exception as exc:  # a broken answer or connection fails this lifecycle only
                    recorder.error(f"lifecycle {seq}: {exc.__class__.__name__}: {exc}")
                    client.close()
                    ok = False
                with outcome_lock:
                    outcome["ok" if ok else "failed"] += 1
        finally:
            client.close()

    before = cpu_snapshot(server.pid)
    client_cpu = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"client-{i}", daemon=True) for i in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + 120))
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    cpu = cpu_used(before, cpu_snapshot(server.pid))
    if any(thread.is_alive() for thread in threads):
        recorder.error("some client threads did not finish in time")
    return HttpResult(wall, outcome["ok"], outcome["failed"], recorder, cpu, client_cpu)


REQUESTS_PER_LIFECYCLE = 12
# The cheapest authenticated API request: an inbox page that finds nothing (token check,
# argument parsing, one SQL statement, a JSON answer) — no engine, no transaction.
FLOOR_REQUEST = "/api/v1/tasks?scope=mine&status=open&task_key=approve&application_no=NONE"


def measure_request_floor(server: Server, staff: Staff, options: Options) -> float:
    """Requests/s of FLOOR_REQUEST from the same C keep-alive clients on the same server:
    what the framework, a token check and one round trip to PostgreSQL cost per request.
    A lifecycle needs REQUESTS_PER_LIFECYCLE requests, so this ÷ 12 bounds the lifecycles/s
    any lifecycle could reach on this stack and machine."""
    recorder = Recorder()
    token = staff.tokens[APPROVERS[0]]
    counts = [0] * options.clients
    stop = time.monotonic() + options.request_floor_seconds

    def worker(index: int) -> None:
        client = Client(server, recorder)
        try:
            while time.monotonic() < stop and not recorder.error_count:
                client.call("floor", "GET", FLOOR_REQUEST, token=token)
                counts[index] += 1
        finally:
            client.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=options.request_floor_seconds + 60)
    rate = sum(counts) / (time.perf_counter() - started)
    if recorder.error_count:
        print("  request floor failed:", *recorder.errors[:3], sep="\n    ")
        return 0.0
    return rate


def measure_stack_floor(options: Options, staff: Staff, log_dir: Path) -> float:
    """Requests/s of the same clients and request against gunicorn (same workers) serving
    `bench/stack_floor_app.py`, which answers the same page without framework or database."""
    with gunicorn(
        options.workers,
        options.threads,
        log_dir,
        worker_class=options.worker_class,
        wsgi_app="bench.stack_floor_app:app",
    ) as server:
        return measure_request_floor(server, staff, options)


def report_request_floor(rate: float, lifecycle_rate: float, stack_rate: float) -> None:
    print("\nREQUEST FLOOR (same server and clients, right after the lifecycles):")
    if stack_rate:
        print(
            f"  HTTP server alone               {stack_rate:9.1f} requests/s  (gunicorn + a bare WSGI function, same page)"
        )
    print(f"  cheapest authenticated request  {rate:9.1f} requests/s  ({FLOOR_REQUEST.split('?')[0]}, empty page)")
    print(
        f"  ÷ {REQUESTS_PER_LIFECYCLE} requests per lifecycle     {rate / REQUESTS_PER_LIFECYCLE:9.1f} lifecycles/s "
        f"at most, if every request were that cheap; measured {lifecycle_rate:.1f} "
        f"({lifecycle_rate * REQUESTS_PER_LIFECYCLE / rate:.2f} of it)"
    )


# --- the engine floor -------------------------------------------------------------------


def _import_app() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def load_process() -> Any:
    """Parse bpmn/ + rules/ as a deployment does, store as JSON and restore (a ProcessSpec)."""
    _import_app()
    from lxml import etree

    from app.workflow.specs import YdxParser, spec_from_json, spec_to_json

    parser = YdxParser()
    for path in sorted((ROOT / "rules").glob("*.dmn")):
        parser.add_dmn_xml(etree.fromstring(path.read_bytes()), filename=path.name)
    bpmn = ROOT / "bpmn" / "loan_lifecycle.bpmn"
    parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(bpmn.read_bytes())), filename=bpmn.name)
    spec = parser.get_spec("loan_lifecycle")
    subprocess_specs = parser.get_subprocess_specs("loan_lifecycle")
    return spec_from_json(spec_to_json(spec, subprocess_specs, DECISION_REFS))


def start_data(seq: int, approvers: tuple[int, int] = (101, 102)) -> dict[str, Any]:
    """The start data app/public/services.py gives a centralized HK application."""
    return {
        "application_id": seq + 1,
        "application_no": f"YDXBENCH{seq:08d}",
        "team_id": 1,
        "region_id": 1,
        "region_code": "HK",
        "approval_mode": "centralized",
        "approvers": list(approvers),
        "product_code": "BIZ-EQ",
        "amount_requested": Decimal("100000.00"),
        "term_requested": 12,
    }


def _user_form(task: Any, approvers: list[int]) -> None:
    """Put a valid form into a READY user task's data, as runtime.complete_user_task does."""
    key = task.task_spec.bpmn_id
    if key == "approve":
        approver_id = task.data["approver_id"]
        amount = Decimal("100000.00") if approver_id == approvers[0] else Decimal("95000.00")
        task.data["approval"] = {
            "decision": "approve",
            "amount": amount,
            "term_months": 12,
            "comment": "",
            "by": approver_id,
            "approver_id": approver_id,
        }
        return
    forms: dict[str, dict[str, Any]] = {
        "assign_officer": {"officer_id": 7, "by": 3},
        "onsite_visit": {"visited_at": VISITED_AT, "notes": "到访", "by": 7},
        "collect_materials": {"customer": {}, "attachments": [], "notes": "", "by": 7},
    }
    if key not in forms:
        raise RuntimeError(f"engine floor: unexpected user task {key}")
    task.data[key] = forms[key]


def _service_result(task: Any, seq: int) -> dict[str, Any]:
    """A plausible result of the service task (credit lookup, disbursement, notice)."""
    if task.task_spec.result_variable == "disbursement":
        return {"loan_id": seq + 1, "core_system": "not_configured", "apr": "0.1200"}
    return {"status": "unavailable", "message": "bench", "requested_at": "2026-11-20T10:00:00+08:00"}


def engine_lifecycle(
    process: Any, seq: int, round_trip: Callable[[Any], Any] | None, stock: bool = False
) -> tuple[list[str], Any]:
    """Drive one lifecycle to its end; returns the completed user task keys and the last
    task's data. `stock`: on SpiffWorkflow's own BpmnWorkflow instead of the server's
    YdxWorkflow (whose only difference is a cheaper walk of the task tree)."""
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    from app.workflow.specs import SCRIPT_ENGINE, new_workflow

    data = start_data(seq)
    if stock:
        workflow = BpmnWorkflow(process.spec, process.subprocess_specs, script_engine=SCRIPT_ENGINE)
    else:
        workflow = new_workflow(process)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data)
    workflow.do_engine_steps()
    if round_trip:
        workflow = round_trip(workflow)
    completed: list[str] = []
    for _ in range(40):
        if workflow.completed:
            break
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if ready:
            task = ready[0]
            _user_form(task, data["approvers"])
            task.run()
            completed.append(task.task_spec.bpmn_id)
        else:
            started = workflow.get_tasks(state=TaskState.STARTED)
            if not started:
                raise RuntimeError(f"engine floor: lifecycle {seq} stuck with nothing ready or waiting")
            task = started[0]
            task.data[task.task_spec.result_variable] = _service_result(task, seq)
            task.complete()
        workflow.do_engine_steps()
        if round_trip:
            workflow = round_trip(workflow)
    if not workflow.completed:
        raise RuntimeError(f"engine floor: lifecycle {seq} did not finish")
    return completed, workflow.last_task.data


@dataclass(frozen=True)
class FloorResult:
    """Lifecycles per second of one floor variant."""

    label: str
    lifecycles: int
    seconds: float
    mean_state_bytes: float

    @property
    def rate(self) -> float:
        """Lifecycles per second."""
        return self.lifecycles / self.seconds if self.seconds else 0.0


# (label, state round trip after every step, SpiffWorkflow's own BpmnWorkflow). The first
# is the floor the issue names — the diagram driven through SpiffWorkflow as shipped; the
# others run on the server's YdxWorkflow (app/workflow/walk.py).
FLOOR_VARIANTS = (
    ("in memory, SpiffWorkflow as shipped", False, True),
    ("in memory, server's walk", False, False),
    ("server's walk, dump/load every step", True, False),
)


def measure_floor(count: int) -> list[FloorResult]:
    """Single-threaded engine throughput without and with a state round trip after each step."""
    _import_app()
    from app.workflow.specs import dump_state, load_state

    started = time.perf_counter()
    process = load_process()
    print(f"engine floor: parse + spec JSON round trip {1000 * (time.perf_counter() - started):.1f} ms")
    sizes: list[int] = []

    def round_trip(workflow: Any) -> Any:
        state = dump_state(workflow)
        sizes.append(len(state))
        return load_state(process, state)

    expected = ["assign_officer", "onsite_visit", "collect_materials", "approve", "approve"]
    for stock in (True, False):  # warm-up and correctness check
        keys, last = engine_lifecycle(process, 0, None, stock)
        decision = last.get("decision") or {}
        if keys != expected or decision.get("final_amount") != Decimal("95000") or "disbursement" not in last:
            raise RuntimeError(f"engine floor: unexpected path {keys} / decision {decision}")
    engine_lifecycle(process, 0, round_trip)
    sizes.clear()

    results = []
    for label, hook, stock in FLOOR_VARIANTS:
        started = time.perf_counter()
        for seq in range(count):
            engine_lifecycle(process, seq, hook and round_trip, stock)
        elapsed = time.perf_counter() - started
        mean_size = sum(sizes) / len(sizes) if sizes else 0.0
        results.append(FloorResult(label, count, elapsed, mean_size))
    return results


# --- the report --------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of unsorted values (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _latency_row(label: str, samples: list[Sample], client_seconds: float) -> str:
    times = [s.seconds * 1000 for s in samples]
    statements = [s.sql_statements for s in samples if s.sql_statements is not None]
    commits = [s.sql_commits for s in samples if s.sql_commits is not None]
    share = 100 * sum(s.seconds for s in samples) / client_seconds if client_seconds else 0.0
    return (
        f"  {label:<28}{len(samples):>6}{percentile(times, 50):>9.1f}{percentile(times, 95):>9.1f}"
        f"{max(times, default=0):>9.1f}{share:>7.1f}%{_mean(statements):>8.1f}{_mean(commits):>8.2f}"
    )


def report_http(result: HttpResult, options: Options) -> tuple[float, float]:
    """Print throughput, latencies, SQL counts and CPU; returns lifecycles/s and the
    machine CPU (server, database, client) per lifecycle in ms."""
    samples = [s for s in result.recorder.samples if s.kind != "login"]
    wall = result.wall_seconds
    rate = result.succeeded / wall if wall else 0.0
    print(
        f"\nHTTP: {result.succeeded} lifecycles ok, {result.failed} failed, {result.recorder.error_count} errors, "
        f"{options.clients} clients, {options.workers} gunicorn workers"
        f" ({options.worker_class}{f' x {options.threads} threads' if options.worker_class == 'gthread' else ''})"
    )
    print(f"  wall time            {wall:9.2f} s")
    print(f"  lifecycles/s         {rate:9.2f}")
    print(f"  task completions/s   {TASKS_PER_LIFECYCLE * result.succeeded / wall if wall else 0:9.2f}")
    print(f"  requests/s           {len(samples) / wall if wall else 0:9.2f}  ({len(samples)} requests)")
    why = "; the sync worker closes the connection after every response" if options.worker_class == "sync" else ""
    print(f"  TCP connections      {result.recorder.connections:9d}  (keep-alive clients{why})")
    if result.recorder.reconnects or result.recorder.task_lookup_retries:
        print(f"  reconnects {result.recorder.reconnects}, task lookups retried {result.recorder.task_lookup_retries}")
    client_seconds = sum(s.seconds for s in samples)
    print(
        f"\n  {'endpoint kind':<28}{'count':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'time':>8}"
        f"{'SQL st':>8}{'commits':>8}"
    )
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    by_tag: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
        if sample.kind in ("complete", "list"):
            by_tag[f"{sample.kind}:{sample.tag}"].append(sample)
    labels = {
        "submit": "submit",
        "list": "list tasks",
        "complete": "complete by task_key",
        "detail": "application detail",
    }
    for kind in KINDS[1:]:
        print(_latency_row(labels[kind], by_kind.get(kind, []), client_seconds))
        for tag in sorted(t for t in by_tag if t.startswith(f"{kind}:")):
            print(_latency_row(f"  {tag.split(':', 1)[1]}", by_tag[tag], client_seconds))
    completes = by_kind.get("complete", [])
    submits = by_kind.get("submit", [])
    print(
        f"\n  SQL per task completion: {_mean([s.sql_statements for s in completes if s.sql_statements is not None]):.1f}"
        f" statements, {_mean([s.sql_commits for s in completes if s.sql_commits is not None]):.2f} commits;"
        f" per submit: {_mean([s.sql_statements for s in submits if s.sql_statements is not None]):.1f} statements,"
        f" {_mean([s.sql_commits for s in submits if s.sql_commits is not None]):.2f} commits"
    )
    per_lifecycle = sum(s.sql_statements or 0 for s in samples) / result.succeeded if result.succeeded else 0
    print(
        f"  SQL per lifecycle (all {len(samples) // max(1, result.succeeded + result.failed)} requests): {per_lifecycle:.0f} statements"
    )
    cores = os.cpu_count() or 1
    cpu = result.cpu
    ours = cpu["server"] + cpu["postgres"] + cpu["postgres_aux"] + result.client_cpu_seconds
    per = 1000 / max(1, result.succeeded)
    print(
        f"  CPU seconds (machine: {cores} cores x {wall:.1f} s = {cores * wall:.0f} s, {cpu['machine']:.1f} busy):"
        f" gunicorn {cpu['server']:.1f}, postgres backends {cpu['postgres']:.1f},"
        f" postgres background {cpu['postgres_aux']:.1f}, bench client {result.client_cpu_seconds:.1f},"
        f" anything else on the machine {max(0.0, cpu['machine'] - ours):.1f}"
    )
    print(
        f"  CPU per lifecycle: gunicorn {per * cpu['server']:.0f} ms, postgres {per * cpu['postgres']:.0f} ms"
        f" (+{per * cpu['postgres_aux']:.0f} ms background), client {per * result.client_cpu_seconds:.0f} ms"
    )
    if result.recorder.errors:
        print("\n  first errors:")
        for message in result.recorder.errors:
            print(f"    {message}")
    return rate, (per * ours if result.succeeded else float("nan"))


def report_floor(results: list[FloorResult], http_rate: float | None) -> None:
    """Print the engine floor and the HTTP ÷ floor ratio."""
    print("\nENGINE FLOOR (single thread, no database):")
    for floor in results:
        size = f", state {floor.mean_state_bytes / 1024:.1f} KB/step" if floor.mean_state_bytes else ""
        print(
            f"  {floor.label:<37}{floor.rate:9.1f} lifecycles/s  ({floor.lifecycles} in {floor.seconds:.2f} s, "
            f"{1000 * floor.seconds / floor.lifecycles:.2f} ms each{size})"
        )
    if http_rate is not None and results:
        ratios = ", ".join(f"{http_rate / f.rate:.3f} of '{f.label}'" for f in results if f.rate)
        print(f"  HTTP ÷ floor: {ratios}")


TARGET_RATE = 50.0  # issue 3: ≥ 50 lifecycles/s on 2 cores
TARGET_SHARE = 0.25  # … and ≥ 0.25 of the engine floor (SpiffWorkflow as shipped)


def report_target(floor: FloorResult | None, http_rate: float, cpu_ms: float, request_floor: float) -> None:
    """What the issue's two targets ask of this machine, as CPU per lifecycle, beside what
    this run spent: the gap in the unit the work is done in."""
    cores = os.cpu_count() or 1
    print(f"\nTARGET (issue 3, {cores} cores): ≥ {TARGET_RATE:.0f} lifecycles/s and ≥ {TARGET_SHARE} of the floor")
    print(f"  ≥ {TARGET_RATE:.0f}/s: {'met' if http_rate >= TARGET_RATE else 'not met'} ({http_rate:.1f})")
    if floor is None or not floor.rate:
        return
    needed = TARGET_SHARE * floor.rate
    print(
        f"  ≥ {TARGET_SHARE} of {floor.rate:.0f}/s = {needed:.1f}/s: {'met' if http_rate >= needed else 'not met'}"
        f" — it leaves {cores * 1000 / needed:.1f} ms of machine CPU per lifecycle; this run spent {cpu_ms:.1f} ms"
    )
    if request_floor:
        print(
            f"  ({REQUESTS_PER_LIFECYCLE} requests as cheap as the empty inbox page would spend"
            f" {REQUESTS_PER_LIFECYCLE * cores * 1000 / request_floor:.1f} ms of it; the engine alone, in memory,"
            f" {1000 * floor.seconds / floor.lifecycles:.1f} ms)"
        )


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Floor, database, server, lifecycles, report; non-zero exit when anything failed."""
    global DATABASE_URL
    options = parse_options(argv)
    DATABASE_URL = PG_URLS[options.pg]
    print(machine_note(), flush=True)
    floor: list[FloorResult] = []
    if options.floor_lifecycles:
        floor = measure_floor(options.floor_lifecycles)
        report_floor(floor, None)

    started = time.perf_counter()
    prepare_database()
    print(f"\ndatabase {DB_NAME} prepared in {time.perf_counter() - started:.1f} s", flush=True)
    recorder = Recorder()
    with tempfile.TemporaryDirectory(prefix="ydx-bench-") as log_dir:
        started = time.perf_counter()
        with gunicorn(options.workers, options.threads, Path(log_dir), worker_class=options.worker_class) as server:
            print(
                f"gunicorn -w {options.workers}{f' --threads {options.threads}' if options.threads > 1 else ''} on {server.host}:{server.port} healthy in {time.perf_counter() - started:.1f} s; "
                f"PostgreSQL over {'TCP 127.0.0.1:5432' if options.pg == 'tcp' else 'the Unix socket in ' + PG_SOCKET_DIR}"
            )
            login_client = Client(server, recorder)
            try:
                staff = login_all(login_client)
            finally:
                login_client.close()
            result = drive(server, staff, options, recorder)
            server_log = _log_tail(server.log_path, 15) if result.recorder.error_count else ""
            request_floor = measure_request_floor(server, staff, options) if options.request_floor_seconds else 0.0
        stack_floor = measure_stack_floor(options, staff, Path(log_dir)) if options.request_floor_seconds else 0.0
    rate, cpu_ms = report_http(result, options)
    if request_floor:
        report_request_floor(request_floor, rate, stack_floor)
    if server_log:
        print(f"\n  gunicorn log tail:\n{server_log}")
    if floor:
        report_floor(floor, rate)
    shipped = next((f for f in floor if f.label == FLOOR_VARIANTS[0][0]), None)  # the floor the issue names
    report_target(shipped, rate, cpu_ms, request_floor)
    print(f"\nload average at the end: {'/'.join(f'{v:.2f}' for v in os.getloadavg())}")
    incomplete = result.succeeded < options.lifecycles
    return 1 if result.recorder.error_count or incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
