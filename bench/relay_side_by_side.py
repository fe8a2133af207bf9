"""Benchmark: two relays side by side, loaded in alternating rounds, for a change's effect.

`relay_throughput.py` runs the proxy and the relay one after the other, and on a
shared machine its figures move by a third from run to run. A change to the relay is
measured more fairly against the code before it: both relays run at once (each with
its own SQLite store, one `smtp-sink` upstream), and rounds of `smtp-source` load
alternate between them, so the machine's drift hits both alike. It prints each
round's messages per second and their ratio, then the medians.

    git worktree add /tmp/before HEAD~1
    python bench/relay_side_by_side.py --before /tmp/before            # old code vs this one
    python bench/relay_side_by_side.py --before-env RELAY_CPU=none     # one setting's effect
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay_throughput import (  # the sibling benchmark's helpers
    RELAY_COMMAND,
    drain,
    free_port,
    latencies,
    prepare_store,
    program,
    relay_environment,
    smtp_source,
    wait_port,
)

SIDES = ("before", "after")


def start_relay(folder: Path, url: str, sink_port: int, extra: dict[str, str]) -> tuple[Any, int]:
    """`gatekeeper relay` on `url`, delivering to the sink; (process, SMTP port)."""
    port, metrics = free_port(), free_port()
    env = relay_environment(
        url, folder, relay_port=port, metrics_port=metrics, sink_port=sink_port,
        node_name=folder.name,
    )  # fmt: skip
    env.pop("PYTHONPATH", None)  # each side's code comes from `extra` alone
    env.update(extra)
    process = subprocess.Popen(RELAY_COMMAND, env=env)
    wait_port(port, process)
    return process, port


def side_env(code: str | None, settings: list[str]) -> dict[str, str]:
    """The environment that makes a relay run `code` (a checkout's folder) with `settings`."""
    env = {}
    if code:
        if not (Path(code) / "gatekeeper" / "__init__.py").is_file():
            raise SystemExit(f"{code} holds no gatekeeper package (a checkout's top folder?)")
        env["PYTHONPATH"] = str(Path(code).resolve())  # found before the installed checkout
    for setting in settings:
        name, sep, value = setting.partition("=")
        if not sep:
            raise SystemExit(f"--*-env takes NAME=VALUE (a setting), not {setting!r}")
        env[f"GATEKEEPER_{name.upper()}"] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="folder of the code to compare with (default: this)")
    parser.add_argument("--before-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--after-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--messages", type=int, default=1000, help="per round and side")
    parser.add_argument("--cases", type=int, default=2000, help="sample record size")
    args = parser.parse_args()
    envs = {
        "before": side_env(args.before, args.before_env),
        "after": side_env(None, args.after_env),
    }
    processes: list[Any] = []
    try:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink_port = free_port()
        sink = subprocess.Popen([program("smtp-sink"), *user, f"127.0.0.1:{sink_port}", "1000"])
        processes.append(sink)
        wait_port(sink_port, sink)
        sides: dict[str, tuple[int, str, tuple[str, str, bytes], Path]] = {}
        for name in SIDES:
            folder = Path(tempfile.mkdtemp(prefix=f"gatekeeper-{name}-"))
            folder.chmod(0o755)
            url = f"sqlite:///{folder / 'gatekeeper.db'}"
            world = prepare_store(url, args.cases)
            message = folder / "message.txt"
            message.write_bytes(world[2])
            process, port = start_relay(folder, url, sink_port, envs[name])
            processes.append(process)
            latencies(port, 50, *world)  # warm: connections, caches
            drain(url)
            sides[name] = (port, url, world, message)
        rates: dict[str, list[float]] = {name: [] for name in SIDES}
        for number in range(args.rounds):
            for name in SIDES if number % 2 == 0 else SIDES[::-1]:
                port, url, (sender, to, _), message = sides[name]
                started = time.perf_counter()
                smtp_source(port, args.messages, message, sender, to)
                drain(url)
                rates[name].append(args.messages / (time.perf_counter() - started))
            before, after = rates["before"][-1], rates["after"][-1]
            print(
                f"round {number + 1}: before {before:6.1f} msg/s, after {after:6.1f} msg/s,"
                f" after/before {after / before:.3f}",
                flush=True,
            )
        ratios = [a / b for b, a in zip(rates["before"], rates["after"], strict=True)]
        ahead = sum(r > 1 for r in ratios)
        print(
            f"median: before {statistics.median(rates['before']):.1f} msg/s, after"
            f" {statistics.median(rates['after']):.1f} msg/s; after/before"
            f" {statistics.median(ratios):.3f} (after ahead in {ahead} of {len(ratios)} rounds)"
        )
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
