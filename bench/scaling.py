"""Benchmark: one relay node against two on the same PostgreSQL store, in one run.

Target (issue 8): two nodes move at least 1.7 times the messages per second of one,
within this machine's limits; where they do not, the figures say what ran out.

    python bench/scaling.py                                  # 600 messages a round, 3 rounds each
    python bench/scaling.py --messages 1000 --rounds 5 --db postgresql+psycopg://root@127.0.0.1/test

Two `gatekeeper relay` processes (nodes bench-a and bench-b, the same settings, each
its own ports and `gate_workers` gate worker processes) share one fresh PostgreSQL
schema; `smtp-sink` is the upstream. A round sends `--messages` typical 3 kB released
emails with Postfix's `smtp-source` over `--sessions` sessions in all: to node a alone,
or split evenly between a and b (as a load balancer would). A round ends when the
upstream has every message (the shared queue drained), so delivery is measured too.
One-node and two-node rounds alternate, so the shared machine's drift hits both alike;
node b is paused (SIGSTOP) through one-node rounds, so both kinds run on warm nodes.

Besides messages per second (median of the rounds) and their ratio, each round
records CPU seconds per process (each relay's main process and its gate workers,
smtp-source, smtp-sink, the store's backends serving the relays) and of the whole
machine, and samples what the relays' store sessions wait on: the figures that
say whether the cores, the store or something else is the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

# The load, the upstream and the sample record as the throughput benchmark makes them.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay_throughput import (
    RELAY_COMMAND,
    cpu_seconds,
    free_port,
    prepare_store,
    program,
    relay_environment,
    wait_port,
)

from tests.pg_schema import fresh_schema, with_app_name

REPO = Path(__file__).resolve().parent.parent

OUT = REPO / "bench" / "out" / "scaling.json"
APP = "gatekeeper-bench"
TICK = os.sysconf("SC_CLK_TCK")


# -- the store ---------------------------------------------------------------------------------


def waiting(engine: Engine) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(
            text("SELECT count(*) FROM outbound_messages WHERE state IN ('queued', 'sending')")
        ).scalar_one()
    return count


def our_backends(engine: Engine) -> dict[int, float]:
    """CPU seconds so far of each store backend serving a benchmark relay."""
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name LIKE :app"),
            {"app": f"{APP}-%"},
        ).scalars()
        return {pid: seconds for pid in pids if (seconds := proc_cpu(pid)) is not None}


class WaitSampler:
    """Samples, every 50 ms, what the relays' active store sessions are waiting on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        # A lock wait is named with the statement that waits and what the session it waits
        # for is doing now: which row everyone queues for, and behind whom.
        query = text(
            "SELECT CASE WHEN w.wait_event_type IS NULL THEN 'on CPU'"
            " WHEN w.wait_event_type = 'Lock' THEN 'Lock:' || w.wait_event || ' in '"
            "   || split_part(regexp_replace(w.query, '\\s+', ' ', 'g'), ' SET', 1)"
            "   || coalesce(' (behind '"
            "     || split_part(regexp_replace(b.query, '\\s+', ' ', 'g'), ' SET', 1)"
            "     || coalesce(', itself waiting: ' || b.wait_event, '') || ')', '')"
            " ELSE w.wait_event_type || ':' || w.wait_event END"
            " FROM pg_stat_activity w LEFT JOIN LATERAL (SELECT query, wait_event"
            "   FROM pg_stat_activity WHERE pid = (pg_blocking_pids(w.pid))[1]) b ON true"
            " WHERE w.application_name LIKE :app AND w.state = 'active'"
        )
        with self.engine.connect() as conn:
            while not self._stop.wait(0.05):
                self.counts.update(conn.execute(query, {"app": f"{APP}-%"}).scalars())
                conn.commit()
                self.samples += 1


# -- processes -----------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of one process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int

    def cpu(self) -> tuple[float, float]:
        """(main process, gate workers) CPU seconds so far."""
        found = cpu_seconds(self.process.pid)
        return found["main"], sum(v for k, v in found.items() if k != "main")


def start_node(
    name: str, url: str, sink_port: int, workers: int, folder: Path, *, cpu: int
) -> Node:
    port, metrics = free_port(), free_port()
    env = relay_environment(
        with_app_name(url, f"{APP}-{name}"),
        folder,  # shared data folder: one quarantine keyring
        relay_port=port,
        metrics_port=metrics,
        sink_port=sink_port,
        gate_workers=workers,
        node_name=name,
        # Two relays on one host: each keeps its own threads on a CPU of its own.
        relay_cpu=cpu % (os.cpu_count() or 1),
    )
    process = subprocess.Popen(RELAY_COMMAND, env=env)
    return Node(name, process, port, metrics)


def smtp_source(
    port: int, *, messages: int, sessions: int, message: Path, sender: str, to: str
) -> Any:
    return subprocess.Popen(
        [
            program("smtp-source"),
            *("-s", str(sessions), "-m", str(messages), "-d", "-A"),
            *("-F", str(message), "-f", sender, "-t", to),
            f"127.0.0.1:{port}",
        ]
    )


def reap(process: subprocess.Popen[bytes]) -> float:
    """Wait for a child; its CPU seconds (from the kernel's own accounting)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{process.args[0]} failed with {process.returncode}")
    return usage.ru_utime + usage.ru_stime


# -- a round -------------------------------------------------------------------------------------


@dataclass
class Round:
    nodes: int
    seconds: float
    msgs_per_s: float
    cpu: dict[str, float]  # process -> CPU seconds in the round
    machine_busy: float  # share of all cores busy over the round (0..1), whoever used them
    waits: dict[str, float] = field(default_factory=dict)  # share of samples per wait


def run_round(
    nodes: Sequence[Node],
    engine: Engine,
    sink: subprocess.Popen[bytes],
    args: argparse.Namespace,
    world: tuple[str, str, Path],
) -> Round:
    sender, to, message = world
    before = {n.name: n.cpu() for n in nodes}
    sink_before = proc_cpu(sink.pid) or 0.0
    backends_before = our_backends(engine)
    busy_before, total_before = machine_cpu()
    share = args.messages // len(nodes)
    sessions = max(1, args.sessions // len(nodes))
    started = time.perf_counter()
    with WaitSampler(engine) as sampler:
        sources = [
            smtp_source(
                n.port, messages=share, sessions=sessions, message=message, sender=sender, to=to
            )
            for n in nodes
        ]
        source_cpu = sum(reap(s) for s in sources)
        while waiting(engine):
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    busy_after, total_after = machine_cpu()
    backends_after = our_backends(engine)
    cpu: dict[str, float] = {}
    for n in nodes:
        main, gates = n.cpu()
        cpu[f"{n.name} main"] = main - before[n.name][0]
        cpu[f"{n.name} gate workers"] = gates - before[n.name][1]
    cpu["smtp-source"] = source_cpu
    cpu["smtp-sink"] = (proc_cpu(sink.pid) or 0.0) - sink_before
    cpu["postgres (relays' sessions)"] = sum(
        v - backends_before.get(pid, 0.0) for pid, v in backends_after.items()
    )
    total = sum(sampler.counts.values()) or 1
    return Round(
        nodes=len(nodes),
        seconds=seconds,
        msgs_per_s=share * len(nodes) / seconds,
        cpu=cpu,
        machine_busy=(busy_after - busy_before) / max(1e-9, total_after - total_before),
        waits={k: v / total for k, v in sampler.counts.most_common()},
    )


def summarise(rounds: list[Round], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "messages_per_round": args.messages,
        "sessions": args.sessions,
        "gate_workers_per_node": args.workers,
        "cpus": os.cpu_count(),
        "rounds": [r.__dict__ for r in rounds],
    }
    for count in (1, 2):
        mine = [r for r in rounds if r.nodes == count]
        keys = mine[0].cpu
        out[f"{count}_node"] = {
            "msgs_per_s_median": round(statistics.median(r.msgs_per_s for r in mine), 1),
            "msgs_per_s_each": [round(r.msgs_per_s, 1) for r in mine],
            "machine_busy_median": round(statistics.median(r.machine_busy for r in mine), 3),
            # CPU per message, and the share of one core each process used, medians.
            "cpu_ms_per_message": {
                k: round(1000 * statistics.median(r.cpu[k] for r in mine) / args.messages, 2)
                for k in keys
            },
            "cores_used": {
                k: round(statistics.median(r.cpu[k] / r.seconds for r in mine), 2) for k in keys
            },
            # Cores busy on the whole (shared) machine, and those this benchmark used.
            "machine_cores_busy": round(
                statistics.median(r.machine_busy * (os.cpu_count() or 1) for r in mine), 2
            ),
            "benchmark_cores": round(
                statistics.median(sum(r.cpu.values()) / r.seconds for r in mine), 2
            ),
            "store_waits": mine[len(mine) // 2].waits,
        }
    out["ratio"] = round(out["2_node"]["msgs_per_s_median"] / out["1_node"]["msgs_per_s_median"], 2)
    return out


def report(results: dict[str, Any]) -> None:
    print("\n" + "-" * 72)
    for count in (1, 2):
        r = results[f"{count}_node"]
        each = ", ".join(f"{v:.1f}" for v in r["msgs_per_s_each"])
        print(
            f"{count} node{'s' if count > 1 else ' '}: {r['msgs_per_s_median']:7.1f} msg/s"
            f" (median; rounds: {each}); machine busy {100 * r['machine_busy_median']:.0f} %"
            f" of {results['cpus']} cores"
        )
    print(f"ratio  : {results['ratio']:.2f}   (target >= 1.7)")
    for count in (1, 2):
        r = results[f"{count}_node"]
        print(f"\nCPU with {count} node{'s' if count > 1 else ''} (ms per message; cores used):")
        total = 0.0
        for name, ms in r["cpu_ms_per_message"].items():
            total += ms
            print(f"  {name:30} {ms:7.2f} ms  {r['cores_used'][name]:5.2f}")
        print(f"  {'all of these':30} {total:7.2f} ms  {r['benchmark_cores']:5.2f}")
        print(
            f"  machine: {r['machine_cores_busy']:.2f} of {results['cpus']} cores busy, of which"
            f" {r['benchmark_cores']:.2f} this benchmark's (the rest: other processes)"
        )
        print("  what the relays' active store sessions were doing (share of samples):")
        for what, share, behind in grouped_waits(r["store_waits"]):
            print(f"    {100 * share:3.0f} %  {what}")
            for whom, part in behind[:4]:
                print(f"             {100 * part:3.0f} %  behind a session in {whom}")


def grouped_waits(waits: dict[str, float]) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """Waits by what waits, largest first, each with whom it waited behind."""
    shares: Counter[str] = Counter()
    behind: dict[str, Counter[str]] = {}
    for label, share in waits.items():
        what, _, whom = label.partition(" (behind ")
        shares[what] += share
        if whom:
            whom = whom.rstrip(")")
            whom = whom.split(" (")[0] if whom.startswith("INSERT") else whom
            behind.setdefault(what, Counter())[whom[:90]] += share
    return [
        (what, share, behind.get(what, Counter()).most_common())
        for what, share in shares.most_common()
        if share >= 0.01
    ]


def measure(args: argparse.Namespace, url: str, folder: Path) -> list[Round]:
    """Start the upstream and both nodes on the store at `url`; run the rounds."""
    sender, to, raw = prepare_store(url, args.cases)
    message = folder / "message.txt"
    message.write_bytes(raw)
    world = (sender, to, message)
    engine = create_engine(url)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sink_port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink = subprocess.Popen([program("smtp-sink"), *user, f"127.0.0.1:{sink_port}", "1000"])
        processes.append(sink)
        wait_port(sink_port, sink)
        nodes = [
            start_node(name, url, sink_port, args.workers, folder, cpu=cpu)
            for cpu, name in enumerate(("bench-a", "bench-b"))
        ]
        processes += [n.process for n in nodes]
        for n in nodes:
            wait_port(n.port, n.process)
        print("warming both nodes", flush=True)
        warm = argparse.Namespace(**{**vars(args), "messages": 100})
        run_round(nodes, engine, sink, warm, world)
        rounds = []
        for number in range(args.rounds):
            for count in (1, 2):
                if count == 1:  # node b takes no part: it would drain the shared queue too
                    nodes[1].process.send_signal(signal.SIGSTOP)
                try:
                    found = run_round(nodes[:count], engine, sink, args, world)
                finally:
                    if count == 1:
                        nodes[1].process.send_signal(signal.SIGCONT)
                rounds.append(found)
                print(
                    f"round {number + 1}, {count} node(s): {found.msgs_per_s:.1f} msg/s,"
                    f" machine busy {100 * found.machine_busy:.0f} %",
                    flush=True,
                )
        return rounds
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="of each kind")
    parser.add_argument("--sessions", type=int, default=16, help="SMTP sessions in all")
    parser.add_argument("--workers", type=int, default=1, help="gate_workers per node")
    parser.add_argument("--cases", type=int, default=2000, help="sample record size")
    parser.add_argument("--db", default="postgresql+psycopg://root@127.0.0.1:5432/test")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gatekeeper-scaling-"))
    folder.chmod(0o755)
    try:
        with fresh_schema(args.db, "bench") as url:
            where = args.db.split("@")[-1]
            print(f"store: a fresh schema on {where}; {args.cases} cases", flush=True)
            rounds = measure(args, url, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # with the keyring the relays generated
    results = summarise(rounds, args)
    report(results)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
