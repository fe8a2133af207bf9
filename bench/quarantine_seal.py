"""Benchmark: what sealing held content costs, beside copying the same bytes.

    python bench/quarantine_seal.py                 # 3 kB, 100 kB, 1 MB, 25 MB values
    python bench/quarantine_seal.py --seconds 0.5   # shorter runs per size

For each size: seal (AES-256-GCM, random nonce, the row's identity as
associated data, exactly as the relay stores an item's bytes), open, and as the
baseline a plain copy of the bytes (what storing them unsealed costs at least).
Figures are MB/s and microseconds per value, single-threaded, CPU-bound; the
relay's per-message cost is one seal of the message plus one of its subject.
Results go to bench/out/quarantine_seal.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatekeeper.quarantine import Keyring
from gatekeeper.store.sealed import content_context

SIZES = {"3 kB": 3 * 1024, "100 kB": 100 * 1024, "1 MB": 1024 * 1024, "25 MB": 25 * 1024 * 1024}
OUT = Path(__file__).parent / "out" / "quarantine_seal.json"


def timed(call: Callable[[], Any], seconds: float) -> float:
    """Seconds per call, over at least `seconds` of calls (and at least 3)."""
    calls, started = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and calls >= 3:
            return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    keyring = Keyring.generate()
    context = content_context(123456)
    results: dict[str, dict[str, float]] = {}
    print(f"{'size':>7} {'seal MB/s':>10} {'open MB/s':>10} {'copy MB/s':>10}"
          f" {'seal µs':>9} {'open µs':>9} {'copy µs':>9}")  # fmt: skip
    for label, size in SIZES.items():
        data = os.urandom(size)
        key_id, sealed = keyring.seal(data, context)
        assert keyring.open(key_id, sealed, context) == data
        seal = timed(lambda data=data: keyring.seal(data, context), args.seconds)
        opened = timed(lambda k=key_id, s=sealed: keyring.open(k, s, context), args.seconds)
        copy = timed(lambda data=data: bytearray(data), args.seconds)
        mb = size / 1e6
        results[label] = {
            "bytes": size,
            "overhead_bytes": len(sealed) - size,
            "seal_mb_s": mb / seal,
            "open_mb_s": mb / opened,
            "copy_mb_s": mb / copy,
            "seal_us": seal * 1e6,
            "open_us": opened * 1e6,
            "copy_us": copy * 1e6,
        }
        r = results[label]
        print(f"{label:>7} {r['seal_mb_s']:>10.0f} {r['open_mb_s']:>10.0f} {r['copy_mb_s']:>10.0f}"
              f" {r['seal_us']:>9.1f} {r['open_us']:>9.1f} {r['copy_us']:>9.1f}")  # fmt: skip
    overhead = results["3 kB"]["overhead_bytes"]
    print(f"each sealed value is {overhead:.0f} bytes longer (format byte, nonce, tag)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures in {OUT}")


if __name__ == "__main__":
    main()
