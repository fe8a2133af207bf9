"""Benchmark: how long the gate takes per email, and which stage costs what.

Targets (issue 3): p99 <= 50 ms for a typical 3 kB email without attachment,
<= 100 ms with a 2-page PDF; also with the 1 000 000-party record loaded.

    python bench/gate_latency.py                    # evaluation record, then ~1M parties
    python bench/gate_latency.py --skip-million     # only the 2 000-case record

Messages are the emails of the evaluation corpus (bench/correspondence.py)
between 2 and 4.5 kB with no attachment, so the text is varied and realistic; the
"with PDF" run attaches to each a 2-page PDF of case text made with reportlab.
Stages per message: parse (MIME, including PDF text extraction), analysis (all
of the spaCy pipeline and matchers), of which the statistical NER (measured as
the difference with an analyser without NER), and the checks with the policy.
The NER cache is cleared before every message, so each is read cold (the
worst case; in production signatures and quoted text repeat and hit the cache).
Wall time and CPU time (this process) are both reported.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import spacy
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from gatekeeper.analysis.pipeline import Analyzer
from gatekeeper.config import Settings
from gatekeeper.gate import Gate
from gatekeeper.item import Item
from gatekeeper.mail import item_from_email
from gatekeeper.sample import SampleRecord, SampleShape
from gatekeeper.store import open_store
from gatekeeper.store.importer import import_cases, import_staff

CORPUS = Path(__file__).resolve().parent / "out" / "corpus"
INTERNAL = ("gatekeeper.example",)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ensure_corpus() -> None:
    if (CORPUS / "labels.jsonl").exists():
        return
    import subprocess

    subprocess.run(
        [sys.executable, str(Path(__file__).parent / "correspondence.py"), "--out", str(CORPUS),
         "--cases", "2000", "--items-per-class", "200"],
        check=True,
    )  # fmt: skip


def typical_messages(limit: int) -> list[bytes]:
    chosen = []
    for line in (CORPUS / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        if label["class"] == "unreadable_content":
            continue  # the time of a mistake's checking is the same as of clean mail
        raw = (CORPUS / label["file"]).read_bytes()
        message = message_from_bytes(raw, policy=default)
        if 2000 <= len(raw) <= 4500 and not any(True for _ in message.iter_attachments()):  # type: ignore[attr-defined]
            chosen.append(raw)
        if len(chosen) >= limit:
            break
    return chosen


def two_page_pdf(text: str) -> bytes:
    lines = [line[:90] for line in text.splitlines() if line.strip()] * 3
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4)
    for page in range(2):
        for number, line in enumerate(lines[page * 40 : page * 40 + 40]):
            document.drawString(60, 780 - 18 * number, line)
        document.showPage()
    document.save()
    return buffer.getvalue()


def with_pdf(raw: bytes) -> bytes:
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain", "html"))
    text = body.get_content() if body is not None else "Report"
    message.add_attachment(
        two_page_pdf(text), maintype="application", subtype="pdf", filename="report.pdf"
    )
    return bytes(message)


def timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def measure(gate: Gate, bare: Analyzer, messages: list[bytes]) -> dict[str, float]:
    rows: dict[str, list[float]] = {
        k: [] for k in ("parse", "analysis", "matchers", "checks", "total", "cpu")
    }
    for raw in messages:
        gate.analyzer.ner_cache.clear()
        item, parse_ms, parse_cpu = timed(lambda raw=raw: item_from_email(raw))
        assert isinstance(item, Item)
        decision, check_ms, check_cpu = timed(lambda item=item: gate.check(item))
        _, matchers_ms, _ = timed(lambda item=item: bare.annotate(item))
        rows["parse"].append(parse_ms)
        rows["analysis"].append(decision.timings_ms.get("analysis", 0.0))
        rows["checks"].append(decision.timings_ms.get("checks", 0.0))
        rows["matchers"].append(matchers_ms)
        rows["total"].append(parse_ms + check_ms)
        rows["cpu"].append(parse_cpu + check_cpu)
    out: dict[str, float] = {}
    for key, values in rows.items():
        out[f"{key}_p50"] = statistics.median(values)
        out[f"{key}_p99"] = percentile(values, 0.99)
    out["ner_p50"] = max(0.0, out["analysis_p50"] - out["matchers_p50"])
    return out


def build_store(url: str, million: bool) -> None:
    engine = open_store(url)
    with (CORPUS / "cases.jsonl").open("rb") as lines:
        import_cases(engine, lines)
    with (CORPUS / "staff.jsonl").open("rb") as lines:
        import_staff(engine, lines)
    if million:
        # The evaluation cases plus lean generated ones (case ids from 300000) to ~1M parties.
        sample = SampleRecord(seed=99, shape=SampleShape.lean())
        lines_ = (json.dumps(sample.case(n)) for n in range(200_000, 398_000))
        report = import_cases(engine, lines_)
        print(f"  {report.summary()}")
    engine.dispose()


def run(name: str, url: str, messages: list[bytes], with_pdfs: list[bytes]) -> dict[str, Any]:
    engine = open_store(url)
    started = time.perf_counter()
    gate = Gate.from_store(engine, Settings(internal_domains=INTERNAL))
    build = time.perf_counter() - started
    bare = Analyzer(gate.index, nlp=spacy.blank("en"))
    for raw in messages[:20]:  # warm up: first PDFium and spaCy calls pay one-off costs
        gate.check(item_from_email(with_pdf(raw)))
    result = {
        "record": name,
        "parties": len(gate.index),
        "gate_build_seconds": build,
        "typical": measure(gate, bare, messages),
        "with_pdf": measure(gate, bare, with_pdfs),
    }
    engine.dispose()
    return result


def report(results: list[dict[str, Any]], count: int) -> None:
    print(f"\n{count} messages per run, cold NER cache; milliseconds")
    header = f"{'record':>14} {'mail':>9} | {'total p50':>9} {'p99':>7} {'cpu p50':>8} | {'parse':>6} {'analysis':>8} {'NER':>6} {'matchers':>8} {'checks':>6}"
    print(header)
    print("-" * len(header))
    for result in results:
        for kind in ("typical", "with_pdf"):
            m = result[kind]
            print(
                f"{result['parties']:>8} pty {kind:>9} | {m['total_p50']:9.1f} {m['total_p99']:7.1f} "
                f"{m['cpu_p50']:8.1f} | {m['parse_p50']:6.1f} {m['analysis_p50']:8.1f} {m['ner_p50']:6.1f} "
                f"{m['matchers_p50']:8.1f} {m['checks_p50']:6.1f}"
            )
    print("targets: typical p99 <= 50 ms; with a 2-page PDF p99 <= 100 ms (stage columns are p50)")
    for result in results:
        print(
            f"gate built in {result['gate_build_seconds']:.1f} s over {result['parties']} parties"
        )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "gate_latency.json").write_text(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--skip-million", action="store_true")
    args = parser.parse_args()
    ensure_corpus()
    messages = typical_messages(args.messages)
    pdfs = [with_pdf(raw) for raw in messages]
    print(
        f"{len(messages)} typical messages, {statistics.mean(map(len, messages)) / 1000:.1f} kB on average"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="gk-latency-") as tmp:
        small = f"sqlite:///{Path(tmp) / 'small.db'}"
        build_store(small, million=False)
        results.append(run("evaluation", small, messages, pdfs))
        if not args.skip_million:
            print("loading ~1 000 000 parties (takes about a minute and a half)")
            big = f"sqlite:///{Path(tmp) / 'million.db'}"
            build_store(big, million=True)
            results.append(run("million", big, messages, pdfs))
    report(results, len(messages))


if __name__ == "__main__":
    main()
