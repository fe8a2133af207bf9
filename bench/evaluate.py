"""Detection evaluation: every labelled item of the corpus through the real gate, scored per class.

    python bench/evaluate.py                                # 2000 cases, 200 items a class
    python bench/evaluate.py --cases 300 --items-per-class 20   # a quick look
    python bench/evaluate.py --out DIR                      # reuse the corpus in DIR

The corpus comes from `bench/correspondence.py` (generated into --out, default
bench/out/corpus, or reused when DIR already holds one of the same size). Its
case record and staff are imported into a fresh temporary SQLite store, the
gate is built from it as the relay builds it, and every .eml is parsed with
`item_from_email` and checked. Targets: every mistake class caught (hold or
block) >= 99 %, clean items held <= 2 %; the confidential-address leak is also
reported against its own expectation, block.

Prints per class: items, caught, the verdicts, which checks fired; then every
miss (file, variant, why, checks fired) so the checks can be improved. Writes
the same as JSON to bench/out/evaluation.json. It is a report: it exits 0
whatever the figures say.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere

from correspondence import CLASSES, CLEAN, CorpusParams, generate
from sqlalchemy import Engine

from gatekeeper.config import Settings
from gatekeeper.sample import INTERNAL_DOMAIN
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff

BENCH = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH / "out" / "corpus"
REPORT = BENCH / "out" / "evaluation.json"
CAUGHT_TARGET = 99.0  # % of each mistake class held or blocked
CLEAN_HELD_TARGET = 2.0  # % of clean items held or blocked, at most
SEVERE = ("hold", "block")


@dataclass
class Outcome:
    """What the gate decided about one labelled item."""

    file: str
    cls: str
    variant: str
    expect: str
    why: str
    verdict: str  # release, hold, block, or error
    findings: list[dict[str, str]] = field(default_factory=list)  # check, severity, summary
    ms: float = 0.0
    error: str | None = None

    @property
    def caught(self) -> bool:
        return self.verdict in SEVERE

    @property
    def missed(self) -> bool:
        """A mistake released, or a clean item stopped: the two ways of being wrong."""
        return self.caught if self.cls == CLEAN else not self.caught

    def fired(self) -> list[str]:
        return [f"{f['check']}:{f['severity']}" for f in self.findings]


def corpus_at(out: Path, args: argparse.Namespace, jobs: int) -> tuple[Path, dict[str, Any]]:
    """The corpus to evaluate: freshly generated unless DIR holds one that fits.

    A corpus fits when it was written with the requested sizes and seed by this very
    generator; one named with --out and no sizes is taken as it is.
    """
    meta_path = out / "corpus.json"
    sized = any(v is not None for v in (args.cases, args.items_per_class, args.clean_items))
    items = args.items_per_class or 200
    params = CorpusParams(
        cases=args.cases or 2000,
        items_per_class=items,
        seed=args.seed,
        clean_items=args.clean_items or 2 * items,
    )
    if (out / "labels.jsonl").is_file() and not args.regenerate:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        wanted = params.as_json()
        as_it_is = out.resolve() != DEFAULT_OUT.resolve() and not sized
        if as_it_is or all(meta.get(k) == v for k, v in wanted.items()):
            print(f"reusing the corpus in {out}")
            return out, meta
    started = time.perf_counter()
    print(f"generating {params.cases} cases, {params.items_per_class} items a class into {out} ...")
    counts = generate(out, params, jobs=jobs)
    print(f"  {sum(counts.values())} items in {time.perf_counter() - started:.0f} s")
    return out, params.as_json() | {"counts": counts}


def load_store(corpus: Path, database_url: str) -> Engine:
    engine = open_store(database_url)
    started = time.perf_counter()
    with (corpus / "cases.jsonl").open(encoding="utf-8") as lines:
        cases = import_cases(engine, lines)
    with (corpus / "staff.jsonl").open(encoding="utf-8") as lines:
        staff = import_staff(engine, lines)
    print(f"  {cases.summary()}")
    print(f"  {staff.summary()}")
    if cases.rejected or staff.rejected:
        for rejection in [*cases.rejected, *staff.rejected][:10]:
            print(f"  rejected {rejection}")
    print(f"  store loaded in {time.perf_counter() - started:.1f} s")
    return engine


# One gate per worker process, built in the worker from the shared store file.
_WORKER: dict[str, Any] = {}


def start_worker(database_url: str) -> None:
    from gatekeeper.gate import Gate

    started = time.perf_counter()
    engine = open_store(database_url)
    _WORKER["gate"] = Gate.from_store(engine, Settings(internal_domains=(INTERNAL_DOMAIN,)))
    _WORKER["built_s"] = time.perf_counter() - started
    engine.dispose()


def check_chunk(corpus: Path, labels: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    """Check some items with this worker's gate; (seconds the gate took to build, outcomes)."""
    from gatekeeper.mail import item_from_email

    gate = _WORKER["gate"]
    outcomes = []
    for label in labels:
        outcome = Outcome(
            label["file"],
            label["class"],
            label.get("variant", ""),
            label["expect"],
            label["why"],
            "error",
        )
        raw = (corpus / label["file"]).read_bytes()
        began = time.perf_counter()
        try:
            item = item_from_email(raw, sender=label["sender"])
            decision = gate.check(item)
        except Exception as error:  # a crash is a finding of the evaluation, not its end
            outcome.error = f"{type(error).__name__}: {error}"
        else:
            outcome.verdict = decision.verdict.value
            outcome.findings = [
                {
                    "check": f.finding.check,
                    "severity": f.severity.value,
                    "summary": f.finding.summary,
                }
                for f in decision.findings
            ]
        outcome.ms = (time.perf_counter() - began) * 1000
        outcomes.append(asdict(outcome))
    return _WORKER["built_s"], outcomes


def check_all(
    corpus: Path, labels: list[dict[str, Any]], database_url: str, jobs: int
) -> tuple[list[Outcome], float]:
    """Every item through the gate; the outcomes and how long building a gate took.

    The gate's modules are imported here, before the fork, so that a missing one is one
    clear ImportError and the workers start with the language pipeline's code loaded.
    """
    from gatekeeper import gate, mail  # noqa: F401

    chunks = [labels[i : i + 40] for i in range(0, len(labels), 40)]
    results: dict[int, list[dict[str, Any]]] = {}
    built = 0.0
    print(f"  checking {len(labels)} items in {jobs} process(es), each building its own gate ...")
    if jobs <= 1:
        start_worker(database_url)
        for number, chunk in enumerate(chunks):
            built, results[number] = check_chunk(corpus, chunk)
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(jobs, context, start_worker, (database_url,)) as pool:
            futures = {pool.submit(check_chunk, corpus, chunk): n for n, chunk in enumerate(chunks)}
            for done, future in enumerate(as_completed(futures), 1):
                seconds, results[futures[future]] = future.result()
                built = max(built, seconds)
                if done % 15 == 0:
                    print(f"  ... {min(done * 40, len(labels))}")
    outcomes = [Outcome(**o) for n in sorted(results) for o in results[n]]
    return outcomes, built


def score(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    by_class: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_class[outcome.cls].append(outcome)
    table: dict[str, dict[str, Any]] = {}
    for cls in CLASSES:
        group = by_class.get(cls, [])
        if not group:
            continue
        verdicts = Counter(o.verdict for o in group)
        caught = sum(o.caught for o in group)
        rate = 100.0 * caught / len(group)
        fired = Counter(f["check"] for o in group for f in o.findings if f["severity"] in SEVERE)
        variants: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for o in group:
            variants[o.variant][0] += 1
            variants[o.variant][1] += o.missed
        row: dict[str, Any] = {
            "items": len(group),
            "caught": caught,
            "caught_pct": round(rate, 2),
            "verdicts": {v: verdicts.get(v, 0) for v in ("release", "hold", "block", "error")},
            "fired": dict(fired.most_common()),
            "own_check_fired": sum(any(f["check"] == cls for f in o.findings) for o in group),
            "variants": {v: {"items": n, "wrong": w} for v, (n, w) in sorted(variants.items())},
        }
        if cls == CLEAN:
            row["held"] = caught
            row["held_pct"] = row.pop("caught_pct")
            row["target"] = f"<= {CLEAN_HELD_TARGET:g} %"
            row["met"] = row["held_pct"] <= CLEAN_HELD_TARGET
        else:
            row["target"] = f">= {CAUGHT_TARGET:g} %"
            row["met"] = rate >= CAUGHT_TARGET
            row["as_expected"] = sum(o.verdict in (o.expect, "block") for o in group)
        table[cls] = row
    return table


def print_table(table: dict[str, dict[str, Any]]) -> None:
    print()
    head = f"{'class':28}{'items':>6}  {'caught / held':>15}  {'target':>8}       release   hold  block  error"
    print(head)
    print("-" * len(head))
    for cls, row in table.items():
        v = row["verdicts"]
        if cls == CLEAN:
            figure = f"held {row['held']:>4} {row['held_pct']:5.1f}%"
        else:
            figure = f"{row['caught']:>4} {row['caught_pct']:6.1f}%"
        mark = "ok" if row["met"] else "MISS"
        print(
            f"{cls:28}{row['items']:>6}  {figure:>15}  {row['target']:>8}  {mark:4}  "
            f"{v['release']:>7} {v['hold']:>6} {v['block']:>6} {v['error']:>6}"
        )
    leak = table.get("confidential_address_leak")
    if leak:
        print(
            f"\nconfidential_address_leak expects block: {leak['verdicts']['block']} of {leak['items']} blocked"
        )


def print_fired(table: dict[str, dict[str, Any]]) -> None:
    print(
        "\nchecks that fired (hold or block), per class; 'own' = the class's own check fired at all:"
    )
    for cls, row in table.items():
        fired = ", ".join(f"{check} {n}" for check, n in row["fired"].items()) or "none"
        own = "" if cls == CLEAN else f"own {row['own_check_fired']}/{row['items']}; "
        print(f"  {cls:28}{own}{fired}")


def print_misses(outcomes: list[Outcome], table: dict[str, dict[str, Any]], limit: int) -> None:
    print("\nmisses (mistakes released, clean items held), with the checks that fired:")
    any_miss = False
    for cls, row in table.items():
        misses = [o for o in outcomes if o.cls == cls and o.missed]
        if not misses:
            continue
        any_miss = True
        by_variant = ", ".join(
            f"{v} {d['wrong']}/{d['items']}" for v, d in row["variants"].items() if d["wrong"]
        )
        print(f"\n  {cls}: {len(misses)} ({by_variant})")
        for o in misses[:limit]:
            fired = ", ".join(o.fired()) or (o.error or "nothing fired")
            print(f"    {o.file}  [{o.variant}] {o.why}")
            print(f"        -> {o.verdict}: {fired}")
            for finding in o.findings[:3] if cls == CLEAN else ():
                print(f"           {finding['check']}: {finding['summary']}")
        if len(misses) > limit:
            print(
                f"    ... and {len(misses) - limit} more (all in {REPORT.relative_to(BENCH.parent)})"
            )
    if not any_miss:
        print("  none")
    leaks = [o for o in outcomes if o.cls == "confidential_address_leak" and o.verdict == "hold"]
    if leaks:
        print(f"\n  confidential_address_leak held but not blocked: {len(leaks)}")
        for o in leaks[:limit]:
            print(f"    {o.file}  [{o.variant}] -> {', '.join(o.fired())}")


def timings(outcomes: Iterable[Outcome]) -> dict[str, float]:
    ms = sorted(o.ms for o in outcomes)
    if not ms:
        return {}
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
        "max_ms": round(ms[-1], 1),
        "total_s": round(sum(ms) / 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="corpus directory (default bench/out/corpus)"
    )
    parser.add_argument("--cases", type=int, help="cases in the record (default 2000)")
    parser.add_argument("--items-per-class", type=int, help="items per mistake class (default 200)")
    parser.add_argument("--clean-items", type=int, help="clean items (default twice the above)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--regenerate", action="store_true", help="generate even when DIR holds a corpus"
    )
    parser.add_argument("--show-misses", type=int, default=15, help="misses listed per class")
    parser.add_argument("--jobs", type=int, default=2, help="processes checking items (default 2)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    corpus, meta = corpus_at(args.out, args, args.jobs)
    labels = [
        json.loads(line)
        for line in (corpus / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    with tempfile.TemporaryDirectory(prefix="gk-eval-") as tmp:
        print("loading the record into a fresh SQLite store")
        database_url = f"sqlite:///{Path(tmp) / 'evaluation.db'}"
        load_store(corpus, database_url).dispose()
        try:
            outcomes, gate_seconds = check_all(corpus, labels, database_url, args.jobs)
        except ImportError as error:
            print(f"the gate cannot be built here: {error}", file=sys.stderr)
            return 0
    table = score(outcomes)
    times = timings(outcomes)
    print_table(table)
    print_fired(table)
    print_misses(outcomes, table, args.show_misses)
    elapsed = time.perf_counter() - started
    print(
        f"\n{len(outcomes)} items; gate built in {gate_seconds:.1f} s; per item p50 {times.get('p50_ms', 0)} ms, "
        f"p95 {times.get('p95_ms', 0)} ms; whole run {elapsed:.0f} s"
    )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "corpus": str(corpus),
        "corpus_params": meta,
        "targets": {
            "caught_pct_at_least": CAUGHT_TARGET,
            "clean_held_pct_at_most": CLEAN_HELD_TARGET,
        },
        "classes": table,
        "timing": times | {"gate_build_s": round(gate_seconds, 1), "run_s": round(elapsed, 1)},
        "misses": [asdict(o) for o in outcomes if o.missed],
        "leaks_not_blocked": [
            o.file for o in outcomes if o.cls == "confidential_address_leak" and o.verdict == "hold"
        ],
        "errors": [{"file": o.file, "error": o.error} for o in outcomes if o.error],
    }
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {REPORT.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
