"""Receiver throughput: POST /hooks/<instance> with every check and a durable intake, vs a no-op route.

Run: .venv/bin/python bench/receiver_bench.py [--tickets distinct|per-ticket-20|both] [--runs 5]
     [--seconds 5] [--concurrency 8] [--client wrk|python]

Both apps are served by gunicorn with the same settings (connector.receiver.web.DEFAULTS: the receiver's
production settings), in the same run, on loopback. The real route gets a ~2.4 KB signed Jira
`jira:issue_created` payload (HMAC verification, JSON parse, JSON Schema validation (fastjsonschema),
delivery id, the intake's Lua script: dedupe, keep in the ticket's inbox `sla:in:*`, mark the ticket
as wanting a look, and, the first time a ticket wants one while no dispatch is asked for, one RQ
dispatch enqueue; connector/receiver/intake.py), in a private persistent redis-server (AOF) started here.
Each request carries a new delivery id, so none is a cheap duplicate. The no-op route answers 202
without reading the body. No RQ worker runs: the receiver is measured alone.

Which tickets the deliveries are for (`--tickets`, default both, each against the no-op route
measured in the same run):
- distinct: every request is for a different Jira issue id (every delivery is a new ticket: the
  intake's worst case, a new inbox and a new `sla:want` member each time);
- per-ticket-20: the same bodies for N/20 issues, each sent 20 times (with distinct delivery ids),
  interleaved round-robin over windows of 100 tickets.
The bodies are built from one template (issue id, key and self URL vary; all ids have the same
width, so every body has the same length) and signed in Python before the clock starts; wrk's Lua
script reads the (issue id, signature) table from a file and cycles through it, each wrk thread
taking every t-th entry, and fails the run if it had to wrap around. The Python client does the same.

The load comes from a separate process: wrk (`apt-get install wrk`) when it is installed, else
`--client python` (threads on raw sockets). Either way one connection per request, as the receiver's
settings have no keep-alive (`keepalive: 0`). The load generator's CPU is measured and printed: a
client near one full core would make the figures meaningless (the Python client is near that on 2
cores, so prefer wrk). Each run measures the no-op route and each ticket mode once, in an order
rotated per run. After each measurement of the real route the script checks what Redis kept (every
counted request is a row in an inbox; distinct: one row per inbox; per-ticket-20: at most 20; one
`sla:want` member per inbox) and then empties Redis (FLUSHALL; the intake script stays cached), so
every measurement starts from the same state. Printed: per-mode medians, the ratio of the medians
and the median of the per-run ratios, and the load average. Target (issue 8): ratio >= 0.45 for both
modes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-webhook-secret"
ENV = {"BENCH_EMAIL": "bench@example.invalid", "BENCH_TOKEN": "bench-token", "BENCH_SECRET": SECRET}
CONFIG: dict[str, Any] = {
    "instances": {
        "acme": {
            "product": "jira", "dry_run": True, "base_url": "https://acme.atlassian.net",
            "deployment": "cloud", "webhook_secret_env": "BENCH_SECRET",
            "auth": {"email_env": "BENCH_EMAIL", "token_env": "BENCH_TOKEN"},
        }
    },
    "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
    "policies": [{"id": "p", "version": 1,
                  "metrics": {"resolution": {"calendar": "always", "targets": {"normal": "8h"}}}}],
}


def payload() -> bytes:
    """The documented Jira issue_created envelope, compact, without avatar URLs: about 2 KB."""
    data = json.loads((ROOT / "adapters/jira/tests/fixtures/cloud_issue_created.json").read_text())

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "avatarUrls"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(data), separators=(",", ":")).encode()


# ---------------------------------------------------------------- which tickets the deliveries are for

MODES = ("distinct", "per-ticket-20")
PER_TICKET = 20  # per-ticket-20: deliveries per ticket
WINDOW = 100  # per-ticket-20: tickets interleaved round-robin, 100 at a time
TICKET_BASE = 100_000_000  # nine-digit issue ids: every body has the same length
MEASUREMENT_IDS = 1_000_000  # issue ids reserved per measurement (disjoint between measurements)
_TID = "@@TICKET@@"


def body_parts() -> list[str]:
    """The payload's JSON text split where the issue id goes (its id, the digits of its key, its URL):
    `tid.join(parts)` is the body for issue `tid`."""
    data = json.loads(payload())
    issue = data["issue"]
    issue["id"] = _TID
    issue["key"] = issue["key"].split("-")[0] + "-" + _TID
    issue["self"] = issue["self"].rsplit("/", 1)[0] + "/" + _TID
    text = json.dumps(data, separators=(",", ":"))
    parts = text.split(_TID)
    if len(parts) != 4 or "]==]" in text:
        raise SystemExit("unexpected payload template")
    return parts


def ticket_sequence(mode: str, count: int, base: int) -> list[int]:
    """The issue id of each of `count` requests: all different (distinct), or each of count/20 issues 20
    times, round-robin over windows of WINDOW issues (per-ticket-20)."""
    if mode == "distinct":
        return [base + i for i in range(count)]
    block = WINDOW * PER_TICKET
    return [base + (i // block) * WINDOW + (i % block) % WINDOW for i in range(count)]


def signed_entries(mode: str, count: int, base: int) -> list[tuple[str, str]]:
    """(issue id, X-Hub-Signature) per request; each body is signed once."""
    parts = body_parts()
    key = SECRET.encode()
    signatures: dict[int, str] = {}
    entries = []
    for tid in ticket_sequence(mode, count, base):
        if tid not in signatures:
            body = str(tid).join(parts).encode()
            signatures[tid] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        entries.append((str(tid), signatures[tid]))
    return entries


# ---------------------------------------------------------------- servers (child processes)


def serve(kind: str, bind: str, redis_url: str) -> None:
    from flask import Flask

    from connector.config.loader import config_from_dict
    from connector.logs import configure_logging
    from connector.receiver.web import ReceiverServer

    configure_logging(os.environ.get("BENCH_LOG_LEVEL", "INFO"))  # as in production: INFO, JSON lines
    config = config_from_dict({**CONFIG, "redis_url": redis_url}, ENV, source="bench")
    if kind == "real":
        factory = None  # the receiver exactly as `sla-connector web` builds it
    else:
        def factory() -> Flask:
            app = Flask("noop")

            @app.post("/hooks/<instance>")
            def noop(instance: str) -> tuple[str, int]:
                return "", 202

            return app
    options = json.loads(os.environ.get("BENCH_GUNICORN", "{}"))  # explore settings; default: production
    ReceiverServer(config, bind, options, app_factory=factory).run()


# ---------------------------------------------------------------- load generator (a child process)


def load(port: int, count: int, concurrency: int, max_seconds: float, mode: str, base: int) -> dict[str, Any]:
    parts = body_parts()
    # Every request prepared before the clock starts: the bodies and their signatures (signed once per
    # ticket), so the client does the same work whichever tickets the deliveries are for.
    requests = []
    for tid, signature in signed_entries(mode, count, base):
        body = tid.join(parts).encode()
        head = (f"POST /hooks/acme HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nX-Hub-Signature: {signature}\r\nConnection: close\r\n")
        requests.append((head.encode(), body))
    run_id = os.urandom(4).hex()
    counter = iter(range(count))
    lock = threading.Lock()
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        local: list[float] = []
        while time.perf_counter() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            prefix, body = requests[n]
            request = prefix + f"X-Atlassian-Webhook-Identifier: {run_id}-{n}\r\n\r\n".encode() + body
            start = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            local.append(time.perf_counter() - start)
            status = int(b"".join(chunks).split(b" ", 2)[1])
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "statuses": statuses,
    }


# ---------------------------------------------------------------- the driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


# Placeholders (not %-formatting: Lua patterns use `%`): __PARTS__, __DATA__, __RUN__, __THREADS__.
WRK_SCRIPT = """
local parts, data, run, nthreads = {__PARTS__}, __DATA__, __RUN__, __THREADS__
local entries, head = {}, nil
threads = {}
sent, wrapped, size, index = 0, 0, 0, 0
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
  thread:set("index", #threads)
  table.insert(threads, thread)
end
function init(args)
  -- The pre-signed table, one "issue-id signature" line per request; this thread takes every
  -- nthreads-th entry. Each request then only joins strings (keeps the client's own CPU low).
  for line in io.lines(data) do
    local id, sig = line:match("^(%S+) (%S+)$")
    entries[#entries + 1] = {id, sig}
  end
  size = #entries
  local port = wrk.port or "80"
  head = "POST /hooks/acme HTTP/1.1\\r\\nHost: " .. wrk.host .. ":" .. port ..
    "\\r\\nContent-Type: application/json\\r\\nContent-Length: "
end
function request()
  local i = index + sent * nthreads
  sent = sent + 1
  if i >= size then
    wrapped = wrapped + 1
    i = i % size
  end
  local entry = entries[i + 1]
  local id = entry[1]
  local body = parts[1] .. id .. parts[2] .. id .. parts[3] .. id .. parts[4]
  return head .. #body .. "\\r\\nX-Hub-Signature: " .. entry[2] ..
    "\\r\\nX-Atlassian-Webhook-Identifier: " .. run .. "-" .. tid .. "-" .. sent .. "\\r\\n\\r\\n" .. body
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("bench-table %d %d %d\\n", t:get("sent"), t:get("wrapped"), t:get("size")))
  end
end
"""


def _lua(text: str) -> str:
    return "[==[" + text + "]==]"  # a Lua long string: no escaping needed for JSON


def wrk_load(port: int, concurrency: int, seconds: float, threads: int, entries: list[tuple[str, str]],
             ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sla-bench-wrk-") as tmp:
        data, script = Path(tmp, "table.txt"), Path(tmp, "load.lua")
        data.write_text("".join(f"{tid} {signature}\n" for tid, signature in entries))
        script.write_text(
            WRK_SCRIPT.replace("__PARTS__", ",".join(map(_lua, body_parts())))
            .replace("__DATA__", _lua(str(data))).replace("__RUN__", _lua(os.urandom(4).hex()))
            .replace("__THREADS__", str(threads)))
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s", "--latency",
             "-s", str(script), f"http://127.0.0.1:{port}/hooks/acme"],
            check=True, capture_output=True, text=True, timeout=seconds + 60,
        ).stdout

    def find(label: str) -> str:
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(label)), None)
        if line is None:
            raise SystemExit(f"unexpected wrk output (no {label!r}):\n{out}")
        return line.split()[-1] if label != "50%" else line.split()[1]

    total = int(next(ln for ln in out.splitlines() if " requests in " in ln).split()[0])
    errors = next((ln for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln), None)
    tables = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("bench-table ")]
    if len(tables) != threads:
        raise SystemExit(f"unexpected wrk output (no table use per thread):\n{out}")
    return {"requests": total, "rps": float(find("Requests/sec:")), "p50_ms": _ms(find("50%")),
            "p99_ms": _ms(find("99%")), "errors": errors.strip() if errors else None,
            "wrapped": sum(int(t[1]) for t in tables), "table_used": sum(int(t[0]) for t in tables)}


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise SystemExit(f"unexpected wrk latency {text!r}")


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (Linux /proc; 0.0 elsewhere)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu(int(child))
    except (OSError, IndexError, ValueError):
        pass  # not Linux, or the process just exited
    return total


def measure(port: int, args: argparse.Namespace, server_pid: int, redis_pid: int, mode: str,
            base: int) -> dict[str, Any]:
    """One measurement, with the CPU the load generator itself used (seconds per second), the
    server's CPU per request (gunicorn master and workers, microseconds) and redis-server's.
    `mode` and `base` choose the tickets (issue ids from `base` on)."""
    entries = signed_entries(mode, table_size(args), base) if args.client == "wrk" else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before, redis_before = tree_cpu(server_pid), tree_cpu(redis_pid)
    start = time.perf_counter()
    if args.client == "wrk":
        result = wrk_load(port, args.concurrency, args.seconds, args.wrk_threads, entries)
    else:
        result = json.loads(subprocess.run(
            [sys.executable, __file__, "--load", str(port), "--requests", str(args.requests),
             "--concurrency", str(args.concurrency), "--max-seconds", str(args.max_seconds),
             "--load-tickets", mode, "--load-base", str(base)],
            check=True, capture_output=True, text=True,
        ).stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["client_cpu"] = cpu / (time.perf_counter() - start)
    result["server_us"] = (tree_cpu(server_pid) - server_before) / max(result["requests"], 1) * 1e6
    result["redis_us"] = (tree_cpu(redis_pid) - redis_before) / max(result["requests"], 1) * 1e6
    return result


def table_size(args: argparse.Namespace) -> int:
    """Pre-signed requests per wrk measurement: --table, else 15,000 per second (about twice the most
    any route served here)."""
    return args.table or int(args.seconds * 15_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", choices=(*MODES, "both"), default="both",
                        help="which tickets the deliveries are for (default both, each against the no-op)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="per Python-client measurement")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per Python-client measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--client", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk measurement")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--table", type=int, default=0,
                        help="pre-signed requests per wrk measurement (default 15,000 per second)")
    parser.add_argument("--serve", choices=("real", "noop"), help=argparse.SUPPRESS)
    parser.add_argument("--bind", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load-tickets", choices=MODES, default="distinct", help=argparse.SUPPRESS)
    parser.add_argument("--load-base", type=int, default=TICKET_BASE, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.bind, args.redis_url)
        return
    if args.load:
        print(json.dumps(load(args.load, args.requests, args.concurrency, args.max_seconds,
                              args.load_tickets, args.load_base)))
        return
    table = table_size(args)
    if args.client == "wrk" and table > MEASUREMENT_IDS or args.requests > MEASUREMENT_IDS:
        raise SystemExit(f"at most {MEASUREMENT_IDS:,} requests per measurement")

    from connector.embedded_redis import EmbeddedRedis
    from connector.receiver.web import DEFAULTS

    modes = list(MODES) if args.tickets == "both" else [args.tickets]
    kinds = ["noop", *modes]
    load_before = os.getloadavg()
    tmp_dir = tempfile.TemporaryDirectory(prefix="sla-bench-")
    with tmp_dir as tmp, EmbeddedRedis(tmp, persistent=True) as server:
        ports = {"noop": free_port(), "real": free_port()}
        procs = {
            kind: subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, "--bind", f"127.0.0.1:{port}",
                 "--redis-url", server.url],
                stderr=subprocess.DEVNULL,  # the receiver's JSON log lines (written, as in production)
            )
            for kind, port in ports.items()
        }
        conn = redis_client(server.url)
        try:
            for kind, port in ports.items():
                wait_listening(port, procs[kind])
            redis_pid = int(conn.info("server")["process_id"])
            results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
            measurement = 0
            for run in range(args.runs):
                shift = run % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:  # the order rotates from run to run
                    server_kind = "noop" if kind == "noop" else "real"
                    mode = "distinct" if kind == "noop" else kind  # the no-op's client does the same work
                    base = TICKET_BASE + measurement * MEASUREMENT_IDS
                    measurement += 1
                    r = measure(ports[server_kind], args, procs[server_kind].pid, redis_pid, mode, base)
                    if r.get("wrapped") and kind != "noop":
                        raise SystemExit(f"wrk used {r['table_used']} requests of a table of {table}: "
                                         "it sent some tickets twice; raise --table")
                    if server_kind == "real":
                        r["kept"] = check_kept(conn, kind, r["requests"], args.concurrency)
                        conn.flushall()  # the next measurement starts from an empty Redis
                    results[kind].append(r)
                    answers = f"statuses {r['statuses']}" if "statuses" in r else (r["errors"] or "all 2xx")
                    kept = (f"  kept {r['kept']['rows']} rows in {r['kept']['tickets']} tickets"
                            if "kept" in r else "")
                    print(f"run {run + 1} {kind:>13}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:.1f} ms  "
                          f"p99 {r['p99_ms']:.1f} ms  server {r['server_us']:.0f} us/req  "
                          f"redis {r['redis_us']:.0f}  client CPU {r['client_cpu']:.2f} core  "
                          f"{answers}{kept}", flush=True)
            bad = {s for m in modes for r in results[m] for s in r.get("statuses", {}) if s != "202"}
            bad |= {r["errors"] for m in modes for r in results[m] if r.get("errors")}
            if bad:
                raise SystemExit(f"the receiver answered {sorted(bad)}: this would not measure acceptance")
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=30)
        costs = breakdown(server.url)
    load_after = os.getloadavg()

    med = {kind: statistics.median(r["rps"] for r in rs) for kind, rs in results.items()}
    p50 = {kind: statistics.median(r["p50_ms"] for r in rs) for kind, rs in results.items()}
    srv = {kind: statistics.median(r["server_us"] for r in rs) for kind, rs in results.items()}
    cpu = {kind: statistics.median(r["client_cpu"] for r in rs) for kind, rs in results.items()}
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}; load average (1/5/15 min) before "
          + "/".join(f"{x:.2f}" for x in load_before) + ", after " + "/".join(f"{x:.2f}" for x in load_after)
          + " (a shared machine: other work runs beside the benchmark)")
    if args.client == "wrk":
        load_text = (f"wrk, {args.wrk_threads} thread(s), {args.concurrency} connections, "
                     f"{args.seconds:g} s per measurement, tables of {table} pre-signed requests")
    else:
        load_text = (f"Python, 1 process x {args.concurrency} threads, "
                     f"{args.requests} requests per measurement")
    settings = {**DEFAULTS, **json.loads(os.environ.get("BENCH_GUNICORN", "{}"))}
    print(f"gunicorn: {settings['workers']} x {settings['worker_class']} workers; load: {load_text}; "
          f"{args.runs} runs; client CPU (median) " + ", ".join(f"{k} {cpu[k]:.2f}" for k in kinds) + " core")
    print(f"payload: {len(str(TICKET_BASE).join(body_parts()))} bytes, signed (X-Hub-Signature)")
    print(f"{'no-op route':>22}: {med['noop']:7.0f} req/s (median), p50 {p50['noop']:.1f} ms, "
          f"server CPU {srv['noop']:.0f} us/req")
    for mode in modes:
        red = statistics.median(r["redis_us"] for r in results[mode])
        rows = sum(r["kept"]["rows"] for r in results[mode])
        tickets = sum(r["kept"]["tickets"] for r in results[mode])
        print(f"{'POST /hooks ' + mode:>22}: {med[mode]:7.0f} req/s (median), p50 {p50[mode]:.1f} ms, "
              f"server CPU {srv[mode]:.0f} us/req (redis-server apart: {red:.0f} us/req); "
              f"kept {rows} rows in {tickets} tickets")
    for mode in modes:
        ratio = med[mode] / med["noop"]
        # Each run measures every route back to back: their ratio is less exposed to load from other
        # processes on a shared machine than the ratio of medians taken minutes apart.
        pairs = zip(results[mode], results["noop"], strict=True)
        paired = statistics.median(r["rps"] / n["rps"] for r, n in pairs)
        verdict = "OK" if ratio >= 0.45 else "BELOW TARGET"
        print(f"{'ratio ' + mode:>22}: {ratio:.2f} (target >= 0.45) {verdict}; "
              f"median of the per-run ratios {paired:.2f}; server CPU ratio {srv['noop'] / srv[mode]:.2f}")
    print("where a request's CPU goes, in process (microseconds): "
          + ", ".join(f"{k} {v:.0f}" for k, v in costs.items()))


def check_kept(conn: Any, mode: str, sent: int, concurrency: int) -> dict[str, int]:
    """What the receiver kept in one measurement, checked: every counted request is a row in a ticket's
    inbox (no worker runs), with the shape the mode asks for, and every ticket wants a look."""
    time.sleep(0.5)  # requests in flight when the load stopped are still being served
    keys = list(conn.scan_iter("sla:in:*", count=1000))
    with conn.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        lengths = [int(n) for n in pipe.execute()]
    rows, tickets, want = sum(lengths), len(lengths), int(conn.zcard("sla:want"))
    # wrk counts a 200 (duplicate) as a success: every counted request must have been kept. wrk does
    # not count the requests still in flight when its time is up (at most one per connection).
    if not sent <= rows <= sent + concurrency:
        raise SystemExit(f"{mode}: {sent} requests to the receiver but {rows} rows kept: not all were kept")
    most = max(lengths, default=0)
    if mode == "distinct" and most != 1:
        raise SystemExit(f"distinct: a ticket got {most} deliveries: the tickets were not all new")
    if mode == "per-ticket-20" and (most > PER_TICKET or tickets > rows / PER_TICKET + WINDOW):
        raise SystemExit(f"per-ticket-20: {rows} rows in {tickets} tickets, at most {most} per ticket")
    if want != tickets:
        raise SystemExit(f"{mode}: {tickets} tickets kept deliveries but {want} want a look")
    return {"rows": rows, "tickets": tickets}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def breakdown(redis_url: str, n: int = 2000) -> dict[str, float]:
    """CPU per request of the no-op app, the whole receiver, and its parts, called as WSGI in process."""
    import inspect
    import io
    import logging
    from datetime import UTC, datetime

    import redis
    from flask import Flask

    from connector.config.loader import config_from_dict
    from connector.logs import configure_logging
    from connector.receiver.app import create_app
    from connector.receiver.intake import accept

    configure_logging("INFO")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))
    config = config_from_dict({**CONFIG, "redis_url": redis_url}, ENV, source="bench")
    conn = redis.Redis.from_url(redis_url)
    body = payload()
    parsed = json.loads(body)
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    noop = Flask("noop")
    noop.post("/hooks/<instance>")(lambda instance: ("", 202))
    real = create_app(config, conn)
    adapter = config.instances["acme"].adapter
    # The receiver hands intake the body text when intake takes it (`raw`); measure that path.
    raw = {"raw": body.decode()} if "raw" in inspect.signature(accept).parameters else {}

    # Distinct tickets: one body per request, signed beforehand (issue ids beyond the measurements').
    parts = body_parts()
    distinct = [(tid.join(parts).encode(), sig) for tid, sig in signed_entries("distinct", n, 999_000_000)]

    def environ(i: int, body: bytes = body, signature: str = signature) -> dict[str, Any]:
        return {"REQUEST_METHOD": "POST", "PATH_INFO": "/hooks/acme", "SERVER_NAME": "b", "SERVER_PORT": "80",
                "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)), "HTTP_X_HUB_SIGNATURE": signature,
                "HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER": f"breakdown-{i}"}

    def cpu(fn: Any) -> float:
        start = time.process_time()
        for i in range(n):
            fn(i)
        return (time.process_time() - start) / n * 1e6

    now = datetime.now(UTC)
    # The receiver enqueues through one held connection (connector/receiver/app.py):
    # measure accept the same way.
    held = redis.Redis(connection_pool=conn.connection_pool, single_connection_client=True)
    log = logging.getLogger("sla_connector.app")
    return {
        "no-op app": cpu(lambda i: b"".join(noop(environ(i), lambda *a: None))),
        "receiver, one ticket": cpu(lambda i: b"".join(real(environ(i + n), lambda *a: None))),
        "receiver, distinct tickets": cpu(
            lambda i: b"".join(real(environ(i + 2 * n, *distinct[i]), lambda *a: None))),
        "of which adapter.validate": cpu(lambda i: adapter.validate(parsed)),
        "intake.accept (client side), one ticket": cpu(
            lambda i: accept(held, "acme", f"b2-{i}", "1", parsed, {}, now, **raw)),
        "distinct tickets": cpu(
            lambda i: accept(held, "acme", f"b4-{i}", f"t{i}", parsed, {}, now, **raw)),
        "the INFO log line": cpu(lambda i: log.info("webhook %s", "accepted", extra={
            "event": "webhook_accepted", "instance": "acme", "delivery": f"b3-{i}", "ticket": "10001"})),
    }


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


if __name__ == "__main__":
    main()
