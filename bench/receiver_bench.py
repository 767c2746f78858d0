"""Receiver throughput: POST /hooks/<instance> with every check and a durable enqueue, vs a no-op route.

Run: .venv/bin/python bench/receiver_bench.py [--runs 5] [--requests 2000] [--concurrency 8]

Both apps are served by gunicorn with the same settings (connector.web.DEFAULTS: the receiver's
production settings), in the same run, on loopback. The real route gets a ~2 KB signed Jira payload
(HMAC verification, JSON parse, JSON Schema validation (fastjsonschema), delivery id, Lua dedupe +
keep in the ticket's inbox, in a private persistent redis-server started here); each request carries
a new delivery id so none is a cheap duplicate. The no-op route answers 202 without reading the
body. The load comes from a separate process: wrk (`apt-get install wrk`; a Lua script signs once
and numbers the delivery ids per thread) when it is installed, else `--client python` (threads on
raw sockets). Either way one connection per request, as the sync workers close each connection. The
load generator's CPU is measured and printed: a client near one full core would make the figures
meaningless (the Python client is near that on 2 cores, so prefer wrk). Each run measures both
routes (alternating order); the medians and their ratio are printed. Target: ratio >= 0.5.
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


# ---------------------------------------------------------------- servers (child processes)


def serve(kind: str, bind: str, redis_url: str) -> None:
    from flask import Flask

    from connector.config import config_from_dict
    from connector.logs import configure_logging
    from connector.web import ReceiverServer

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


def load(port: int, count: int, concurrency: int, max_seconds: float) -> dict[str, Any]:
    body = payload()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    prefix = (f"POST /hooks/acme HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\nX-Hub-Signature: {signature}\r\n"
              "Connection: close\r\n").encode()
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


WRK_SCRIPT = """
local body, signature, run = %s, %s, %s
local head, n = nil, 0
function setup(thread) thread:set("tid", tostring(math.random(1, 1e9))) end
function init(args)
  -- Formatted once; each request only adds its delivery id (keeps the client's own CPU low).
  local port = wrk.port or "80"
  head = "POST /hooks/acme HTTP/1.1\\r\\nHost: " .. wrk.host .. ":" .. port ..
    "\\r\\nContent-Type: application/json\\r\\nContent-Length: " .. #body ..
    "\\r\\nX-Hub-Signature: " .. signature ..
    "\\r\\nX-Atlassian-Webhook-Identifier: " .. run .. "-" .. tid .. "-"
end
function request()
  n = n + 1
  return head .. n .. "\\r\\n\\r\\n" .. body
end
"""


def _lua(text: str) -> str:
    return "[==[" + text + "]==]"  # a Lua long string: no escaping needed for JSON


def wrk_load(port: int, concurrency: int, seconds: float, threads: int) -> dict[str, Any]:
    body = payload()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (_lua(body.decode()), _lua(signature), _lua(os.urandom(4).hex())))
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s", "--latency",
             "-s", f.name, f"http://127.0.0.1:{port}/hooks/acme"],
            check=True, capture_output=True, text=True, timeout=seconds + 30,
        ).stdout
    finally:
        os.unlink(f.name)

    def find(label: str) -> str:
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(label)), None)
        if line is None:
            raise SystemExit(f"unexpected wrk output (no {label!r}):\n{out}")
        return line.split()[-1] if label != "50%" else line.split()[1]

    total = int(next(ln for ln in out.splitlines() if " requests in " in ln).split()[0])
    errors = next((ln for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln), None)
    return {"requests": total, "rps": float(find("Requests/sec:")), "p50_ms": _ms(find("50%")),
            "p99_ms": _ms(find("99%")), "errors": errors.strip() if errors else None}


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


def measure(port: int, args: argparse.Namespace, server_pid: int, redis_pid: int) -> dict[str, Any]:
    """One measurement, with the CPU the load generator itself used (seconds per second), the
    server's CPU per request (gunicorn master and workers, microseconds) and redis-server's."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before, redis_before = tree_cpu(server_pid), tree_cpu(redis_pid)
    start = time.perf_counter()
    if args.client == "wrk":
        result = wrk_load(port, args.concurrency, args.seconds, args.wrk_threads)
    else:
        result = json.loads(subprocess.run(
            [sys.executable, __file__, "--load", str(port), "--requests", str(args.requests),
             "--concurrency", str(args.concurrency), "--max-seconds", str(args.max_seconds)],
            check=True, capture_output=True, text=True,
        ).stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["client_cpu"] = cpu / (time.perf_counter() - start)
    result["server_us"] = (tree_cpu(server_pid) - server_before) / max(result["requests"], 1) * 1e6
    result["redis_us"] = (tree_cpu(redis_pid) - redis_before) / max(result["requests"], 1) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="per measurement (bounded)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per measurement (bounded)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--client", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk measurement (bounded)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--serve", choices=("real", "noop"), help=argparse.SUPPRESS)
    parser.add_argument("--bind", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.bind, args.redis_url)
        return
    if args.load:
        print(json.dumps(load(args.load, args.requests, args.concurrency, args.max_seconds)))
        return

    from connector.embedded_redis import EmbeddedRedis
    from connector.web import DEFAULTS

    body = payload()
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
        try:
            for kind, port in ports.items():
                wait_listening(port, procs[kind])
            redis_pid = int(redis_client(server.url).info("server")["process_id"])
            results: dict[str, list[dict[str, Any]]] = {"noop": [], "real": []}
            for run in range(args.runs):
                order = ("noop", "real") if run % 2 == 0 else ("real", "noop")
                for kind in order:
                    result = measure(ports[kind], args, procs[kind].pid, redis_pid)
                    results[kind].append(result)
                    r = result
                    answers = f"statuses {r['statuses']}" if "statuses" in r else (r["errors"] or "all 2xx")
                    print(f"run {run + 1} {kind:>4}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:.1f} ms  "
                          f"p99 {r['p99_ms']:.1f} ms  server {r['server_us']:.0f} us/req  "
                          f"redis {r['redis_us']:.0f}  client CPU {r['client_cpu']:.2f} core  {answers}",
                          flush=True)
            bad = {s for r in results["real"] for s in r.get("statuses", {}) if s != "202"}
            bad |= {r["errors"] for r in results["real"] if r.get("errors")}
            if bad:
                raise SystemExit(f"the receiver answered {sorted(bad)}: this would not measure acceptance")
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=30)
        queued = server_stream_length(server.url)
        costs = breakdown(server.url)
    # wrk counts a 200 (duplicate) as a success: every counted request must have been queued. wrk
    # does not count the requests still in flight when its time is up (at most one per connection).
    sent = sum(r["requests"] for r in results["real"])
    if not sent <= queued <= sent + args.concurrency * args.runs:
        raise SystemExit(f"{sent} requests to the receiver but {queued} queued: not all were accepted")

    med = {kind: statistics.median(r["rps"] for r in rs) for kind, rs in results.items()}
    p50 = {kind: statistics.median(r["p50_ms"] for r in rs) for kind, rs in results.items()}
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    if args.client == "wrk":
        load_text = (f"wrk, {args.wrk_threads} thread(s), {args.concurrency} connections, "
                     f"{args.seconds:g} s per measurement")
    else:
        load_text = (f"Python, 1 process x {args.concurrency} threads, "
                     f"{args.requests} requests per measurement")
    cpu = {kind: statistics.median(r["client_cpu"] for r in rs) for kind, rs in results.items()}
    settings = {**DEFAULTS, **json.loads(os.environ.get("BENCH_GUNICORN", "{}"))}
    print(f"gunicorn: {settings['workers']} x {settings['worker_class']} workers; load: {load_text}; "
          f"{args.runs} runs; client CPU (median) no-op {cpu['noop']:.2f}, hooks {cpu['real']:.2f} core")
    print(f"payload: {len(body)} bytes, signed (X-Hub-Signature); accepted entries queued: {queued}")
    srv = {kind: statistics.median(r["server_us"] for r in rs) for kind, rs in results.items()}
    print(f"no-op route : {med['noop']:7.0f} req/s (median), p50 {p50['noop']:.1f} ms, "
          f"server CPU {srv['noop']:.0f} us/req")
    red = statistics.median(r["redis_us"] for r in results["real"])
    print(f"POST /hooks : {med['real']:7.0f} req/s (median), p50 {p50['real']:.1f} ms, "
          f"server CPU {srv['real']:.0f} us/req (redis-server apart: {red:.0f} us/req)")
    ratio = med["real"] / med["noop"]
    # Each run measures both routes back to back: their ratio is less exposed to load from other
    # processes on a shared machine than the ratio of medians taken minutes apart.
    pairs = zip(results["real"], results["noop"], strict=True)
    paired = statistics.median(r["rps"] / n["rps"] for r, n in pairs)
    print(f"ratio       : {ratio:.2f} (target >= 0.5) {'OK' if ratio >= 0.5 else 'BELOW TARGET'}; "
          f"median of the per-run ratios {paired:.2f}; server CPU ratio {srv['noop'] / srv['real']:.2f}")
    print("where a request's CPU goes, in process (microseconds): "
          + ", ".join(f"{k} {v:.0f}" for k, v in costs.items()))


def breakdown(redis_url: str, n: int = 2000) -> dict[str, float]:
    """CPU per request of the no-op app, the whole receiver, and its parts, called as WSGI in process."""
    import inspect
    import io
    import logging
    from datetime import UTC, datetime

    import redis
    from flask import Flask

    from connector.app import create_app
    from connector.config import config_from_dict
    from connector.intake import accept
    from connector.logs import configure_logging

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

    def environ(i: int) -> dict[str, Any]:
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
    # The receiver enqueues through one held connection (connector/app.py); measure accept the same way.
    held = redis.Redis(connection_pool=conn.connection_pool, single_connection_client=True)
    log = logging.getLogger("sla_connector.app")
    return {
        "no-op app": cpu(lambda i: b"".join(noop(environ(i), lambda *a: None))),
        "receiver": cpu(lambda i: b"".join(real(environ(i + n), lambda *a: None))),
        "of which adapter.validate": cpu(lambda i: adapter.validate(parsed)),
        "intake.accept (client side)": cpu(
            lambda i: accept(held, "acme", f"b2-{i}", "1", parsed, {}, now, **raw)),
        "the INFO log line": cpu(lambda i: log.info("webhook %s", "accepted", extra={
            "event": "webhook_accepted", "instance": "acme", "delivery": f"b3-{i}", "ticket": "10001"})),
    }


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def server_stream_length(url: str) -> int:
    """Deliveries kept: the rows of every ticket's inbox (no worker runs during the benchmark)."""
    conn = redis_client(url)
    return sum(int(conn.llen(key)) for key in conn.scan_iter("sla:in:*", count=1000))


if __name__ == "__main__":
    main()
