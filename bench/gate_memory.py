"""Benchmark: does a long-lived gate keep what it reads? Memory after thousands of messages.

    python bench/gate_memory.py                   # 3 000 messages of unseen words each way
    python bench/gate_memory.py --messages 500

spaCy adds every word it has not seen to its vocabulary and keeps it: in a gate
worker that runs for days, every name, reference and scrap of garbage stayed
(the 100 000-input fuzzing run ended with 2.9 GB workers). The Analyzer now reads
each item inside a spaCy memory zone, which drops them afterwards. Each side runs
in a fresh process on the same generated messages (400 words each, a fifth of them
capitalised, all new): the gate as shipped, and the baseline, the same gate with
the zone bypassed. It prints the resident memory gained, the strings the vocabulary
gained, and the time per message, then the ratio. Figures go to
`bench/out/gate_memory.json`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "gate_memory.json"
SENDER = "a.jones@gatekeeper.example"
TO = "jane.smith@example.net"


def resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def message(rng: random.Random) -> bytes:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = []
    for _ in range(400):
        word = "".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))
        words.append(word.capitalize() if rng.random() < 0.2 else word)
    body = "Dear Jane,\r\n\r\n" + " ".join(words) + "\r\n\r\nRegards\r\n"
    return f"From: {SENDER}\r\nTo: {TO}\r\nSubject: Notes\r\n\r\n{body}".encode()


def run_side(url: str, messages: int, zone: bool) -> dict[str, Any]:
    """One side, in this process: the figures as a dict."""
    from gatekeeper.config import Settings
    from gatekeeper.gate import Gate
    from gatekeeper.mail import item_from_email
    from gatekeeper.store import open_store

    gate = Gate.from_store(open_store(url), Settings(internal_domains=("gatekeeper.example",)))
    analyzer = gate.analyzer
    if not zone:  # the baseline: every item read outside a memory zone, as before
        analyzer.annotate = analyzer._annotate  # type: ignore[method-assign]
    rng = random.Random(7)
    warm = [message(rng) for _ in range(50)]
    for raw in warm:  # caches, the NER's first allocations
        gate.check(item_from_email(raw, sender=SENDER, envelope_recipients=[TO]))
    strings, memory = len(analyzer.nlp.vocab.strings), resident_mb()
    started = time.perf_counter()
    for _ in range(messages):
        raw = message(rng)
        gate.check(item_from_email(raw, sender=SENDER, envelope_recipients=[TO]))
    seconds = time.perf_counter() - started
    return {
        "zone": zone,
        "messages": messages,
        "resident_mb_gained": round(resident_mb() - memory, 1),
        "strings_gained": len(analyzer.nlp.vocab.strings) - strings,
        "ms_per_message": round(1000 * seconds / messages, 2),
    }


def prepare(folder: Path) -> str:
    from gatekeeper.store import open_store
    from gatekeeper.store.importer import import_cases
    from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE

    url = f"sqlite:///{folder / 'memory.db'}"
    engine = open_store(url)
    import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)])
    engine.dispose()
    return url


def main() -> None:
    sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--side", choices=["zone", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.url, args.messages, args.side == "zone")))
        return
    with tempfile.TemporaryDirectory(prefix="gk-memory-") as tmp:
        url = prepare(Path(tmp))
        found = {}
        for side in ("baseline", "zone"):
            print(f"{side}: {args.messages} messages of unseen words ...", flush=True)
            result = subprocess.run(
                [sys.executable, __file__, "--side", side, "--url", url,
                 "--messages", str(args.messages)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            found[side] = json.loads(result.stdout.strip().splitlines()[-1])
    print("\n" + "-" * 72)
    for side, figures in found.items():
        print(
            f"{side:9}: +{figures['resident_mb_gained']:7.1f} MB resident,"
            f" +{figures['strings_gained']:8d} vocabulary strings,"
            f" {figures['ms_per_message']:6.2f} ms a message"
        )
    base, zone = found["baseline"], found["zone"]
    print(
        f"time ratio (zone / baseline): {zone['ms_per_message'] / base['ms_per_message']:.2f};"
        f" memory kept per 1 000 messages: baseline"
        f" {1000 * base['resident_mb_gained'] / args.messages:.1f} MB,"
        f" zone {1000 * zone['resident_mb_gained'] / args.messages:.1f} MB"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(found, indent=2) + "\n")
    print(f"written to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
