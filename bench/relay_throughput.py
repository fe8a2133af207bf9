"""Benchmark: the SMTP relay against a bare aiosmtpd forwarding proxy, in one run on loopback.

Target (issue 4): on typical mail (3 kB, no attachment, 10 concurrent sessions)
the relay with every check on moves at least half as many messages per second
as a bare aiosmtpd proxy that forwards each message to the same upstream.

    python bench/relay_throughput.py                    # 2 000 messages, SQLite store
    python bench/relay_throughput.py --messages 500 --db postgresql+psycopg://root@127.0.0.1/test

Load: Postfix's `smtp-source` (10 sessions, connections reused). Upstream:
`smtp-sink`. Throughput counts a message once the upstream has it (for the
relay, when its queue has drained), so both sides do the same end-to-end
work. Latency: 10 Python clients time each DATA-to-reply against each server;
"added" is the relay's figure minus the proxy's. Profile: the relay's own
per-stage timings (from /metrics), and cProfile of the gate on the message.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "relay_throughput.json"
SESSIONS = 10


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(
    port: int, process: subprocess.Popen[bytes] | None = None, limit: float = 300
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"process {process.args} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def program(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/lib/postfix/sbin/{name}") if os.path.exists(p)),
        None,
    )
    if not found:
        raise SystemExit(f"{name} is needed (Debian: apt-get install postfix)")
    return found


# -- the baseline: a bare aiosmtpd proxy ------------------------------------------------------


def serve_proxy(port: int, upstream: int) -> None:
    """aiosmtpd forwarding each message to the upstream before answering, off the event loop
    (aiosmtpd's bundled Proxy does the same but blocks the loop): the least a relay does."""
    from aiosmtpd.smtp import SMTP

    pool = ThreadPoolExecutor(32)

    def forward(mail_from: str, rcpts: list[str], data: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", upstream) as client:
            client.sendmail(mail_from, rcpts, data)

    class Forwarding:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                pool, forward, envelope.mail_from, envelope.rcpt_tos, envelope.original_content
            )
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Forwarding()
        server = await loop.create_server(
            lambda: SMTP(
                handler, decode_data=False, data_size_limit=26214400, enable_SMTPUTF8=True
            ),
            "127.0.0.1",
            port,
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(main())


# -- the world: store, message, load ----------------------------------------------------------


def prepare_store(url: str, cases: int) -> tuple[str, str, bytes]:
    """Load a sample record; (sender, recipient, a typical 3 kB message about their case)."""
    from gatekeeper.sample import SampleRecord
    from gatekeeper.store import open_store
    from gatekeeper.store.importer import import_cases, import_staff

    engine = open_store(url)
    record = SampleRecord(seed=7)
    lines = list(record.case_lines(cases))
    import_cases(engine, lines)
    staff = list(record.staff(40))
    import_staff(engine, [json.dumps(s) for s in staff])
    engine.dispose()
    case = json.loads(lines[len(lines) // 2])
    solicitor = next(p for p in case["parties"] if p["role"] == "solicitor")
    client = next(p for p in case["parties"] if p["party_id"] == solicitor.get("represents"))
    children = [p["name"] for p in case["parties"] if p["role"] == "child"] or [client["name"]]
    sender = next(s for s in staff if s["roles"] == ["staff"])
    paragraphs = [
        f"Dear {solicitor['name'].split()[0]},",
        f"Thank you for your letter of last week about your client, {client['name']}. I have"
        " read the statement and the chronology, and I agree that the hearing listed for next"
        " month should go ahead as planned. The local authority will file its final evidence"
        " seven days before the hearing, as the court directed.",
        f"On contact: the arrangements for {', '.join(children)} will stay as they are until"
        " the hearing. Contact takes place at the family centre on Saturday mornings, and the"
        " centre has confirmed the room is booked for the next six weeks. If your client cannot"
        " attend a session, please let me know by Thursday so that the children can be told in"
        " good time.",
        "The guardian has asked for an updated school report and a letter from the GP about"
        " the youngest child's appointments. I have requested both and will share them with"
        " all parties when they arrive. I do not expect anything in them to change the care"
        " plan, but the guardian will want to see them before she writes her analysis.",
        "I would also like to arrange a short meeting with you and the guardian before the"
        " hearing, to agree the issues the court needs to decide and to see whether any can be"
        " narrowed. Tuesday or Wednesday afternoon of next week would suit me; the meeting can"
        " be held by video call if that is easier for you.",
        "Finally, a reminder that the bundle index needs to be agreed by the end of next week."
        " I will circulate a draft on Monday. Please send any documents you want included by"
        " Friday, and let me know if any of them need to be redacted before they go into the"
        " bundle.",
        f"Kind regards,\n{sender['name']}\nSocial worker, {sender['team']} team",
    ]
    body = "\n\n".join(paragraphs) + "\n"
    headers = (
        f"From: {sender['name']} <{sender['email']}>\n"
        f"To: {solicitor['name']} <{solicitor['emails'][0]}>\n"
        "Subject: Hearing next month and contact arrangements\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n"
    )
    message = (headers + "\n" + body).encode()
    while len(message) < 3000:  # typical mail: about 3 kB
        message += b"\n" + paragraphs[2].encode() + b"\n"
    return sender["email"], solicitor["emails"][0], message


def smtp_source(port: int, messages: int, message_file: Path, sender: str, to: str) -> float:
    """Seconds for Postfix's smtp-source to send `messages` over 10 reused sessions."""
    started = time.perf_counter()
    subprocess.run(
        [
            program("smtp-source"),
            "-s",
            str(SESSIONS),
            "-m",
            str(messages),
            "-d",
            "-A",
            "-F",
            str(message_file),
            "-f",
            sender,
            "-t",
            to,
            f"127.0.0.1:{port}",
        ],
        check=True,
    )
    return time.perf_counter() - started


def latencies(
    port: int, count: int, sender: str, to: str, message: bytes, *, sessions: int = SESSIONS
) -> list[float]:
    """DATA-to-reply seconds of `count` messages from `sessions` concurrent sessions."""
    wire = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    found: list[float] = []
    lock = threading.Lock()

    def session(n: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
            client.ehlo()
            for _ in range(n):
                client.mail(sender)
                client.rcpt(to)
                client.putcmd("data")
                client.getreply()
                started = time.perf_counter()
                client.send(wire + b".\r\n")
                code, _ = client.getreply()
                took = time.perf_counter() - started
                assert code == 250, code
                with lock:
                    found.append(took)

    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(session, [count // sessions] * sessions))
    return found


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of a process and of each of its children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(one: int) -> float:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    # Children of any of its threads (the gate workers are started from a thread pool).
    children = [
        c
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]
    return {"main": of(pid), **{f"child-{c}": of(int(c)) for c in children}}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int]) -> float:
    """The share of all cores busy since `before` (1.0: every core, all the time)."""
    busy, total = machine_ticks()
    return (busy - before[0]) / max(1, total - before[1])


def queue_depth(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        depth: int = conn.execute(
            text("SELECT count(*) FROM outbound_messages WHERE state IN ('queued', 'sending')")
        ).scalar_one()
    engine.dispose()
    return depth


def stage_profile(metrics_port: int) -> dict[str, float]:
    """Mean milliseconds per stage, from the relay's Prometheus histograms."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as page:
        text = page.read().decode()
    sums = dict(re.findall(r'gatekeeper_relay_stage_seconds_sum\{stage="(\w+)"\} (\S+)', text))
    counts = dict(re.findall(r'gatekeeper_relay_stage_seconds_count\{stage="(\w+)"\} (\S+)', text))
    return {s: 1000 * float(sums[s]) / float(counts[s]) for s in sums if float(counts[s])}


def gate_profile(url: str, message: bytes, sender: str, to: str, runs: int = 200) -> str:
    """cProfile of the gate itself (parse + analysis + checks + policy) on the message."""
    from gatekeeper.config import Settings
    from gatekeeper.gate import Gate
    from gatekeeper.mail import item_from_email
    from gatekeeper.store import open_store

    engine = open_store(url)
    gate = Gate.from_store(engine, Settings(internal_domains=("gatekeeper.example",)))
    raw = message.replace(b"\n", b"\r\n")
    item = item_from_email(raw, sender=sender, envelope_recipients=[to])
    verdict = gate.check(item).verdict.value
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        gate.check(item_from_email(raw, sender=sender, envelope_recipients=[to]))
    profiler.disable()
    out = StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    engine.dispose()
    return f"verdict on the benchmark message: {verdict}\n" + out.getvalue()


# -- the run -----------------------------------------------------------------------------------


RELAY_COMMAND = [str(Path(sys.executable).with_name("gatekeeper")), "relay"]


def relay_environment(
    url: str,
    folder: Path,
    *,
    relay_port: int,
    metrics_port: int,
    sink_port: int,
    **settings: object,
) -> dict[str, str]:
    """The environment of a benchmark's `gatekeeper relay`: its store and ports, the sink as
    its upstream (no STARTTLS), loopback trusted, warnings only; `settings` add to these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
    values = {
        "database_url": url,
        "relay_port": relay_port,
        "metrics_port": metrics_port,
        "upstream_host": "127.0.0.1",
        "upstream_port": sink_port,
        "upstream_starttls": "false",
        "trusted_networks": "127.0.0.1/32",
        "internal_domains": "gatekeeper.example",
        "log_level": "WARNING",
        **settings,
    }
    env.update({f"GATEKEEPER_{k.upper()}": str(v) for k, v in values.items()})
    env["GATEKEEPER_DATA_DIR"] = str(folder / "data")
    return env


def start_peers(folder: Path, url: str, workers: int) -> dict[str, Any]:
    """smtp-sink, the bare proxy and the relay; their processes and ports."""
    ports = {name: free_port() for name in ("sink", "proxy", "relay", "metrics")}
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen([program("smtp-sink"), *user, f"127.0.0.1:{ports['sink']}", "1000"])
    wait_port(ports["sink"], sink)
    proxy = subprocess.Popen(
        [sys.executable, __file__, "--serve-proxy", str(ports["proxy"]), str(ports["sink"])]
    )
    wait_port(ports["proxy"], proxy)
    env = relay_environment(
        url,
        folder,
        relay_port=ports["relay"],
        metrics_port=ports["metrics"],
        sink_port=ports["sink"],
        gate_workers=workers,
        node_name="bench",
    )
    relay = subprocess.Popen(RELAY_COMMAND, env=env)
    wait_port(ports["relay"], relay)
    return {"ports": ports, "processes": [sink, proxy, relay], "proxy": proxy, "relay": relay}


def drain(url: str) -> None:
    while queue_depth(url):
        time.sleep(0.02)


def measure(
    peers: dict[str, Any],
    url: str,
    args: argparse.Namespace,
    world: tuple[str, str, bytes],
    message_file: Path,
) -> dict[str, Any]:
    """The raw figures: seconds, CPU seconds, latencies, stage means."""
    sender, to, message = world
    ports, proxy, relay = peers["ports"], peers["proxy"], peers["relay"]
    # Warm both (connections, caches) before measuring.
    latencies(ports["proxy"], SESSIONS * 5, sender, to, message)
    latencies(ports["relay"], SESSIONS * 5, sender, to, message)
    drain(url)
    print(f"\nthroughput: smtp-source, {SESSIONS} sessions, {args.messages} messages", flush=True)
    found: dict[str, Any] = {}
    before = cpu_seconds(proxy.pid)["main"]
    machine = machine_ticks()
    found["proxy_seconds"] = smtp_source(ports["proxy"], args.messages, message_file, sender, to)
    found["proxy_busy"] = busy_share(machine)
    found["proxy_cpu"] = cpu_seconds(proxy.pid)["main"] - before
    relay_cpu = cpu_seconds(relay.pid)
    machine = machine_ticks()
    found["accepted_seconds"] = smtp_source(ports["relay"], args.messages, message_file, sender, to)
    started = time.perf_counter() - found["accepted_seconds"]
    drain(url)
    found["relay_seconds"] = time.perf_counter() - started
    found["relay_busy"] = busy_share(machine)
    after = cpu_seconds(relay.pid)
    found["relay_main_cpu"] = after["main"] - relay_cpu["main"]
    # The gate workers (the resource tracker's share is negligible).
    found["gate_cpu"] = sum(v - relay_cpu.get(k, 0.0) for k, v in after.items() if k != "main")
    # The same load to an internal address: the gate's fast path (no analysis), so this
    # measures the relay's own machinery: SMTP, durable store, queue, delivery.
    internal = "colleague@gatekeeper.example"
    internal_file = message_file.with_name("internal.txt")
    internal_file.write_bytes(re.sub(rb"(?m)^To: .*$", f"To: {internal}".encode(), message))
    started = time.perf_counter()
    smtp_source(ports["relay"], args.messages, internal_file, sender, internal)
    drain(url)
    found["machinery_seconds"] = time.perf_counter() - started
    print(
        f"latency: {SESSIONS} Python sessions, {args.latency_messages} messages each side",
        flush=True,
    )
    found["proxy_lat"] = latencies(ports["proxy"], args.latency_messages, sender, to, message)
    found["relay_lat"] = latencies(ports["relay"], args.latency_messages, sender, to, message)
    # One session at a time: what a member of staff waits for when the relay is not busy.
    quiet = args.latency_messages // 2
    found["proxy_lat_1"] = latencies(ports["proxy"], quiet, sender, to, message, sessions=1)
    found["relay_lat_1"] = latencies(ports["relay"], quiet, sender, to, message, sessions=1)
    found["stages"] = stage_profile(ports["metrics"])
    return found


def summarise(
    found: dict[str, Any], args: argparse.Namespace, url: str, size: int
) -> dict[str, Any]:
    n = args.messages
    proxy_rate = n / found["proxy_seconds"]
    relay_rate = n / found["relay_seconds"]
    latency = {
        name: {
            "p50": round(1000 * percentile(values, 0.5), 2),
            "p99": round(1000 * percentile(values, 0.99), 2),
            "mean": round(1000 * statistics.fmean(values), 2),
        }
        for name, values in (
            ("proxy", found["proxy_lat"]),
            ("relay", found["relay_lat"]),
            ("proxy_1_session", found["proxy_lat_1"]),
            ("relay_1_session", found["relay_lat_1"]),
        )
    }
    return {
        "messages": n,
        "message_bytes": size,
        "sessions": SESSIONS,
        "cases": args.cases,
        "store": "postgresql" if url.startswith("postgresql") else "sqlite",
        "cpus": os.cpu_count(),
        "proxy_msgs_per_s": round(proxy_rate, 1),
        "relay_msgs_per_s_accepted": round(n / found["accepted_seconds"], 1),
        "relay_msgs_per_s_delivered": round(relay_rate, 1),
        "ratio": round(relay_rate / proxy_rate, 3),
        "relay_internal_msgs_per_s": round(n / found["machinery_seconds"], 1),
        # Whether a side was held back by the machine's cores or by waiting (1.0: all busy).
        "machine_busy": {
            "proxy": round(found["proxy_busy"], 2),
            "relay": round(found["relay_busy"], 2),
        },
        "ratio_without_analysis": round(n / found["machinery_seconds"] / proxy_rate, 3),
        "latency_ms": latency,
        "latency_added_ms": {
            p: round(latency["relay"][p] - latency["proxy"][p], 2) for p in ("p50", "p99")
        },
        "latency_added_1_session_ms": {
            p: round(latency["relay_1_session"][p] - latency["proxy_1_session"][p], 2)
            for p in ("p50", "p99")
        },
        "stage_ms": {
            k: round(v, 2) for k, v in sorted(found["stages"].items(), key=lambda kv: -kv[1])
        },
        "cpu_ms_per_message": {
            "proxy": round(1000 * found["proxy_cpu"] / n, 2),
            "relay_main_process": round(1000 * found["relay_main_cpu"] / n, 2),
            "relay_gate_workers": round(1000 * found["gate_cpu"] / n, 2),
        },
    }


def report(results: dict[str, Any]) -> None:
    latency, added, cpu = (
        results["latency_ms"],
        results["latency_added_ms"],
        results["cpu_ms_per_message"],
    )
    print("\n" + "-" * 72)
    print(f"bare aiosmtpd proxy : {results['proxy_msgs_per_s']:8.1f} msg/s")
    print(
        f"gatekeeper relay    : {results['relay_msgs_per_s_delivered']:8.1f} msg/s delivered "
        f"({results['relay_msgs_per_s_accepted']:.1f} msg/s answered)"
    )
    print(f"ratio               : {results['ratio']:.2f}   (target >= 0.5)")
    print(
        f"relay, internal mail: {results['relay_internal_msgs_per_s']:8.1f} msg/s (the gate's fast"
        f" path: the relay's own machinery), ratio {results['ratio_without_analysis']:.2f}"
    )
    quiet, q = results["latency_added_1_session_ms"], latency
    print(
        f"latency added       : p50 {added['p50']:.1f} ms, p99 {added['p99']:.1f} ms under the"
        f" 10-session load (relay p50 {q['relay']['p50']} / p99 {q['relay']['p99']} ms;"
        f" proxy p50 {q['proxy']['p50']} / p99 {q['proxy']['p99']} ms)"
    )
    print(
        f"                      p50 {quiet['p50']:.1f} ms, p99 {quiet['p99']:.1f} ms one session"
        f" at a time (relay p50 {q['relay_1_session']['p50']} / p99"
        f" {q['relay_1_session']['p99']} ms; proxy p50 {q['proxy_1_session']['p50']} / p99"
        f" {q['proxy_1_session']['p99']} ms)"
    )
    print(
        f"CPU per message     : proxy {cpu['proxy']} ms; relay {cpu['relay_main_process']} ms"
        f" (SMTP, store, queue, delivery) + {cpu['relay_gate_workers']} ms (gate workers)"
    )
    busy = results["machine_busy"]
    print(
        f"cores busy          : {busy['proxy']:.0%} under the proxy's load,"
        f" {busy['relay']:.0%} under the relay's (all cores, every process)"
    )
    print("where the relay's time goes (mean ms per message, by stage):")
    for stage, ms in results["stage_ms"].items():
        print(f"  {stage:10} {ms:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-messages", type=int, default=500)
    parser.add_argument("--cases", type=int, default=2000, help="sample record size")
    parser.add_argument("--db", help="store URL (default: SQLite in a temporary folder)")
    parser.add_argument("--workers", type=int, default=0, help="gate_workers (0: one per core)")
    parser.add_argument("--serve-proxy", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_proxy:
        serve_proxy(*args.serve_proxy)
        return
    folder = Path(tempfile.mkdtemp(prefix="gatekeeper-bench-"))
    folder.chmod(0o755)
    url = args.db or f"sqlite:///{folder / 'gatekeeper.db'}"
    print(f"store: {url.split('@')[-1]}, sample record of {args.cases} cases", flush=True)
    world = prepare_store(url, args.cases)
    message_file = folder / "message.txt"
    message_file.write_bytes(world[2])
    print(f"message: {len(world[2])} bytes, {world[0]} -> {world[1]}", flush=True)
    peers: dict[str, Any] = {"processes": []}
    try:
        peers = start_peers(folder, url, args.workers)
        found = measure(peers, url, args, world, message_file)
    finally:
        for process in reversed(peers["processes"]):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
    results = summarise(found, args, url, len(world[2]))
    report(results)
    profile = gate_profile(url, world[2], world[0], world[1])
    print("\ncProfile of the gate on the benchmark message (200 runs, cumulative):")
    print(profile)
    results["gate_profile_top"] = profile.splitlines()[:40]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {OUT.relative_to(REPO)}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
