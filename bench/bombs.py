"""Bombs: time and peak memory of the parser and the gate on hostile mail, beside ordinary mail.

    python bench/bombs.py                 # every case, each in a fresh process
    python bench/bombs.py --unguarded     # also PDFium alone on the PDF bomb, as it was before

Each case is one email to a party of the spec's example case, built here and
handed as a file to a fresh process (so its peak memory is its own), which loads
the gate, reads the file, then parses it with `item_from_email` and checks it,
as a relay worker would. Printed per case: the verdict and the reason it was
held, the seconds for parse + gate, the process's peak RSS and how much of it
this one message added (peak minus the RSS with the gate loaded and the bytes
read). Figures go to bench/out/bombs.json. There are no
targets beyond "held, bounded": the ordinary messages are the yardstick.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import bombs  # noqa: E402
from tests import mailfiles as mf  # noqa: E402
from tests.eml import eml  # noqa: E402

OUT = REPO / "bench" / "out" / "bombs.json"
JANE = "Jane Smith <jane.smith@example.net>"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BODY = "Dear Jane,\n\nThe papers for Tuesday are attached.\n\nAlice Jones\n"
GB = 1024 * bombs.MB


def attached(name: str, content_type: str, data: bytes) -> bytes:
    return eml(to=[JANE], subject="Papers", body=BODY, attachments=[(name, content_type, data)])


def pdf(data: bytes) -> bytes:
    return attached("r.pdf", "application/pdf", data)


def many_attachments(count: int) -> bytes:
    message = mf.email_message(BODY, to=JANE)
    for number in range(count):
        mf.attach(message, f"{number}.txt", b"Nothing of note.", "text/plain")
    return mf.as_bytes(message)


CASES: dict[str, Callable[[], bytes]] = {
    "ordinary 3 kB email": lambda: eml(to=[JANE], subject="Tuesday", body=BODY * 30),
    "email with a 2-page PDF": lambda: pdf(mf.text_pdf(BODY * 20, BODY * 20)),
    "PDF: 1 GB of deflated spaces": lambda: pdf(bombs.pdf_bomb(GB)),
    "PDF: 1 GB deflated twice": lambda: pdf(bombs.pdf_bomb(GB, "double")),
    "PDF: 1 GB, filters behind a reference": lambda: pdf(bombs.pdf_bomb(GB, "indirect")),
    "PDF: 1 GB, encrypted, no password": lambda: pdf(bombs.pdf_bomb(GB, "encrypted")),
    "PDF: 500 pages sharing 90 MB of content": lambda: pdf(
        bombs.shared_content_pdf(500, 90 * bombs.MB)
    ),
    "PDF: a million pages": lambda: pdf(bombs.page_tree_pdf(6)),
    "DOCX: 256 MB of zeros inside": lambda: attached("p.docx", DOCX, bombs.docx_bomb(GB // 4)),
    "XLSX: 256 MB of zeros inside": lambda: attached("f.xlsx", XLSX, bombs.xlsx_bomb(GB // 4)),
    "ZIP: 200 000 files": lambda: attached("p.docx", DOCX, bombs.zip_of_many_files(200_000)),
    "multiparts nested 10 000 deep": lambda: bombs.nested_multiparts(10_000),
    "forwards nested 1 000 deep": lambda: bombs.nested_forwards(1000),
    "10 000 attachments": lambda: many_attachments(10_000),
    "body: one 1.2 M-character word": lambda: eml(to=[JANE], subject="N", body="X" * 1_200_000),
    "body: 3 M characters of text": lambda: eml(
        to=[JANE], subject="N", body="Nothing of note. " * 180_000
    ),
}


def rss_mb() -> float:
    """This process's peak RSS. /proc's VmHWM, not getrusage: Linux carries ru_maxrss over
    exec from the forked parent, which here is this driver holding the built cases."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(name: str, path: str, url: str) -> dict[str, Any]:
    """In a fresh process: load the gate, read the case's bytes, then parse and check them."""
    from gatekeeper.config import Settings
    from gatekeeper.gate import Gate
    from gatekeeper.mail import item_from_email
    from gatekeeper.store import open_store

    gate = Gate.from_store(open_store(url), Settings(internal_domains=("gatekeeper.example",)))
    for warm in ("ordinary 3 kB email", "email with a 2-page PDF"):  # lazy loads done
        gate.check(item_from_email(CASES[warm]()))
    raw = Path(path).read_bytes()
    before = rss_mb()
    started = time.perf_counter()
    decision = gate.check(item_from_email(raw))
    seconds = time.perf_counter() - started
    reasons = [
        str(r.finding.evidence.get("problem", ""))
        for r in decision.findings
        if r.finding.check == "unreadable_content"
    ]
    return {
        "case": name,
        "bytes": len(raw),
        "verdict": decision.verdict.value,
        "reason": "; ".join(reasons),
        "seconds": seconds,
        "peak_rss_mb": rss_mb(),
        "added_mb": rss_mb() - before,
    }


def unguarded(size: int) -> dict[str, Any]:
    """PDFium alone on the deflated-spaces bomb: what reading it cost before the check."""
    import pypdfium2 as pdfium

    data = bombs.pdf_bomb(size)
    before = rss_mb()
    started = time.perf_counter()
    document = pdfium.PdfDocument(data)
    page = document[0]
    page.get_textpage().close()
    page.close()
    document.close()
    return {
        "case": f"PDFium alone, {size // bombs.MB} MB bomb (unguarded)",
        "bytes": len(data),
        "verdict": "-",
        "reason": "",
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": rss_mb(),
        "added_mb": rss_mb() - before,
    }


def in_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{args}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--unguarded", action="store_true")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--pdfium-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.db)))
        return
    if args.pdfium_only:
        print(json.dumps(unguarded(args.pdfium_only)))
        return
    from bench.fuzz import prepare_store

    results = []
    with tempfile.TemporaryDirectory(prefix="gk-bombs-") as tmp:
        url = prepare_store(Path(tmp))
        print(f"{'case':42} {'input':>9} {'verdict':>7} {'s':>6} {'peak MB':>8} {'added':>6}")
        for name, build in CASES.items():
            path = Path(tmp) / "case.eml"
            path.write_bytes(build())
            result = in_child(["--one", name, str(path), "--db", url])
            results.append(result)
            print(
                f"{name:42} {result['bytes'] / 1024:>7,.0f}kB {result['verdict']:>7} "
                f"{result['seconds']:>6.2f} {result['peak_rss_mb']:>8.0f} "
                f"{result['added_mb']:>6.0f}  {result['reason'][:90]}",
                flush=True,
            )
    if args.unguarded:
        result = in_child(["--pdfium-only", str(GB)])
        results.append(result)
        print(
            f"{result['case']:42} {result['bytes'] / 1024:>7,.0f}kB {'':>7} "
            f"{result['seconds']:>6.2f} {result['peak_rss_mb']:>8.0f} {result['added_mb']:>6.0f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"\nfigures: {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
