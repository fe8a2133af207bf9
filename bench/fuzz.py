"""Fuzzing: generated and mutated mail through the MIME parser, text extraction and the gate.

    python bench/fuzz.py                      # 100 000 inputs over 2 processes
    python bench/fuzz.py --inputs 5000        # a quicker look

Every input must come back as an Item (item_from_email never raises) and then
as a Decision (the gate never raises); whatever could not be read must be held,
never released unread. Inputs are drawn from three families, each built to
reach different code:

- mutations of the real broken mail in tests/corpora/mime (byte flips,
  truncation, splices of two messages, duplicated or stretched headers,
  damaged boundaries and base64);
- structure-aware messages from hypothesis strategies (random MIME trees:
  nesting, content types, charsets, transfer encodings, file names, forwarded
  messages, attachments that are real, truncated or hostile PDFs and DOCX, zip
  bombs);
- random bytes.

Any exception, or a "release" of an item whose parse reported a problem, is a
failure: the input is saved to bench/out/fuzz/ at once with the traceback. Inputs
are made as the two workers take them (structured ones by the workers
themselves), so memory stays flat however many are asked for. Prints progress
every 5 000 inputs, then the count by family and inputs per second, failures,
the slowest inputs (and how many took longer than --slow) and the workers' peak
memory; Ctrl-C, or SIGTERM, stops the run and prints the same for what was done.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import random
import resource
import signal
import time
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpora" / "mime"
OUT = REPO / "bench" / "out" / "fuzz"
TYPES = [
    "text/plain", "text/html", "application/pdf", "application/octet-stream", "image/png",
    "message/rfc822", "application/zip", "text/calendar", "application/json",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "multipart/mixed", "multipart/alternative", "multipart/related", "application/pkcs7-mime",
]  # fmt: skip
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "utf-16", "x-unknown", "shift_jis", ""]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus"]


# -- input families ---------------------------------------------------------------------------


def corpus() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.rglob("*")) if p.suffix in {".eml", ".msg"}]


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(8)
        if not data:
            data = bytearray(rng.choice(seeds))
        at = rng.randrange(len(data))
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # truncate
            del data[at:]
        elif kind == 2:  # splice another message in
            other = rng.choice(seeds)
            data[at:at] = other[rng.randrange(len(other) or 1) :]
        elif kind == 3:  # duplicate a header-looking line many times
            line_end = data.find(b"\n", at)
            line = data[at : line_end + 1 if line_end > 0 else at + 40]
            data[at:at] = bytes(line) * rng.choice((2, 3, 10, 50, 500))
        elif kind == 4:  # stretch a line
            # mostly modest; now and then a line far past every limit (rarely: the gate
            # reads 2 M characters of text in seconds, and a few hundred such say it all)
            stretch = rng.choices((100, 1000, 10_000, 2_500_000), weights=(20, 40, 39, 1))[0]
            data[at:at] = b"X" * stretch
        elif kind == 5:  # damage a boundary
            found = data.find(b"boundary=")
            if found >= 0:
                data[found + 9 : found + 12] = bytes(rng.randrange(32, 127) for _ in range(3))
        elif kind == 6:  # garbage base64
            data[at:at] = b"Content-Transfer-Encoding: base64\n\n" + bytes(
                rng.choice(b"ABCD=+/\n!") for _ in range(rng.randint(10, 5000))
            )
        else:  # deep nesting
            depth = rng.randint(5, 60)
            head = b"".join(
                b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
                for i in range(depth)
            )
            data[at:at] = head
    return bytes(data)


def pdf(rng: random.Random, hostile: bool) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    for n in range(rng.randint(1, 3)):
        page.drawString(72, 700, f"Case {rng.randint(100000, 199999)} page {n} Jane Smith LS6 2AB")
        page.showPage()
    page.save()
    data = buffer.getvalue()
    if hostile:
        cut = rng.randrange(len(data))
        data = data[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    return data


def zip_bomb(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w:document>" + b"A" * rng.choice((10, 5_000_000)))
    return buffer.getvalue()


# Header text: anything but line breaks (the stdlib refuses to write those into a header).
LINE = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200)


@st.composite
def mime_tree(draw: Any, depth: int = 0) -> EmailMessage:
    # The email package draws MIME boundaries from the global `random`, which hypothesis
    # forbids a strategy to disturb (a deprecation warning for every tree): put it back.
    state = random.getstate()
    try:
        return _mime_tree(draw, depth)
    finally:
        random.setstate(state)


def _mime_tree(draw: Any, depth: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = draw(
        st.sampled_from(["a.jones@gatekeeper.example", "x", "", "=?utf-8?q?=E2?= <@>"])
    )
    message["To"] = draw(
        st.sampled_from(
            ["jane.smith@example.net", "Smith, Jane <jane.smith@example.net>", "undisclosed-recipients:;",
             "a@b, c@d; e@f", "\"\" <>", "m.smith77@example.co"]
        )
    )  # fmt: skip
    message["Subject"] = draw(LINE)
    kind = draw(st.sampled_from(TYPES))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if kind.startswith("multipart/") and depth < 6:
        message.set_content(draw(st.text(max_size=500)))
        for _ in range(draw(st.integers(0, 4))):
            child = draw(mime_tree(depth + 1))
            message.add_attachment(bytes(child), maintype="message", subtype="rfc822")
        return message
    if kind.startswith("text/"):
        charset = draw(st.sampled_from(CHARSETS)) or "utf-8"
        try:
            message.set_content(
                draw(st.text(max_size=2000)), subtype=kind.split("/")[1], charset=charset
            )
        except (LookupError, UnicodeError):
            message.set_content(draw(st.text(max_size=200)))
    else:
        payloads = {
            "application/pdf": lambda: pdf(rng, draw(st.booleans())),
            "application/zip": lambda: zip_bomb(rng),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document": lambda: (
                zip_bomb(rng)
            ),
        }
        data = payloads.get(kind, lambda: draw(st.binary(max_size=4000)))()
        maintype, subtype = kind.split("/")
        message.set_content("see attached")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=draw(LINE) or "f")
    if draw(st.booleans()):
        del message["Content-Transfer-Encoding"]
        message["Content-Transfer-Encoding"] = draw(st.sampled_from(ENCODINGS))
    return message


def structured(count: int, seed: int) -> list[bytes]:
    found: list[bytes] = []

    @settings(
        max_examples=count, database=None, phases=[Phase.generate], deadline=None,
        suppress_health_check=list(HealthCheck), derandomize=False,
    )  # fmt: skip
    @given(mime_tree())
    def collect(message: EmailMessage) -> None:
        try:
            found.append(bytes(message))
        except Exception:  # the stdlib cannot serialise every tree hypothesis draws
            found.append(message.as_string().encode("utf-8", "surrogateescape"))

    random.seed(seed)
    collect()
    return found


# -- the run ----------------------------------------------------------------------------------


_worker: dict[str, Any] = {}  # each worker process's own gate


def _worker_init(url: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it sums up
    from gatekeeper.config import Settings
    from gatekeeper.gate import Gate
    from gatekeeper.store import open_store

    _worker["gate"] = Gate.from_store(
        open_store(url), Settings(internal_domains=("gatekeeper.example",))
    )


def _check_unit(unit: tuple[str, int, bytes | int]) -> list[dict[str, Any]]:
    """A unit of work: one input, or (structured) `count` messages generated here, in the
    worker, as hypothesis's generating costs as much as checking and so runs in parallel."""
    family, number, payload = unit
    if isinstance(payload, int):
        messages = structured(payload, number)
        return [_check((family, number + i, raw)) for i, raw in enumerate(messages)]
    return [_check((family, number, payload))]


def _check(task: tuple[str, int, bytes]) -> dict[str, Any]:
    from gatekeeper.mail import item_from_email

    family, number, raw = task
    started = time.perf_counter()
    outcome: dict[str, Any] = {"family": family, "n": number}
    try:
        item = item_from_email(raw)
        decision = _worker["gate"].check(item)
        unread = item.problems or any(a.problem for a in item.all_attachments())
        external = any(not r.internal for r in decision.recipients)
        if (
            unread
            and external
            and decision.enforced_verdict
            and decision.enforced_verdict.value == "release"
        ):
            outcome["failure"] = "released although parts could not be read"
    except Exception:
        outcome["failure"] = traceback.format_exc()
    outcome["seconds"] = time.perf_counter() - started
    outcome["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if "failure" in outcome:
        outcome["raw"] = raw
    return outcome


def prepare_store(folder: Path) -> str:
    from gatekeeper.store import open_store
    from gatekeeper.store.importer import import_cases, import_staff
    from tests.spec_example import OTHER_CASE, SPEC_EXAMPLE, STAFF

    url = f"sqlite:///{folder / 'fuzz.db'}"
    engine = open_store(url)
    import_cases(engine, [json.dumps(SPEC_EXAMPLE), json.dumps(OTHER_CASE)])
    import_staff(engine, [json.dumps(s) for s in STAFF])
    engine.dispose()
    return url


STRUCTURED_UNIT = 50  # messages generated and checked by a worker at a time


def tasks(total: int, seed: int) -> Iterator[tuple[str, int, bytes | int]]:
    """The units of work, made as the workers take them (a hundred thousand made first
    would hold gigabytes): mutated and random inputs made here, in a seeded random order;
    structured ones as (first number, count), generated by the worker from that number."""
    rng = random.Random(seed)
    seeds = corpus()
    shares = {"mutated": total * 6 // 10, "structured": total * 3 // 10}
    shares["random"] = total - sum(shares.values())
    made = dict.fromkeys(shares, 0)
    while any(made[family] < shares[family] for family in shares):
        family = rng.choices(list(shares), weights=[shares[f] - made[f] for f in shares])[0]
        number = made[family]
        if family == "mutated":
            made[family] += 1
            yield family, number, mutate(rng, seeds)
        elif family == "random":
            made[family] += 1
            yield family, number, rng.randbytes(rng.randint(0, 20_000))
        else:
            count = min(STRUCTURED_UNIT, shares[family] - number)
            made[family] += count
            yield family, seed + number, count


@dataclass
class Run:
    """What the checked inputs came to, tallied as they come."""

    started: float = field(default_factory=time.perf_counter)
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    slowest: list[tuple[float, str, int]] = field(default_factory=list)
    slow_after: float = 5.0  # seconds: an input taking longer is counted as slow
    slow: int = 0
    peak: float = 0.0

    def add(self, outcome: dict[str, Any]) -> None:
        self.counts[outcome["family"]] = self.counts.get(outcome["family"], 0) + 1
        self.peak = max(self.peak, outcome["rss_mb"])
        entry = (outcome["seconds"], outcome["family"], outcome["n"])
        self.slow += outcome["seconds"] > self.slow_after
        self.slowest = sorted([*self.slowest, entry])[-5:]
        if "failure" in outcome:  # saved at once: a long run may be stopped
            self.failures.append(outcome)
            name = f"{outcome['family']}-{outcome['n']}"
            (OUT / f"{name}.eml").write_bytes(outcome["raw"])
            (OUT / f"{name}.txt").write_text(outcome["failure"])
        done = sum(self.counts.values())
        if done % 5000 == 0:
            rate = done / (time.perf_counter() - self.started)
            print(
                f"  {done} inputs, {len(self.failures)} failures, {rate:.1f} inputs/s", flush=True
            )


def main() -> None:
    import sys
    import tempfile

    sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--slow", type=float, default=5.0, help="seconds after which an input is reported"
    )
    args = parser.parse_args()
    # Stopping sums up: Ctrl-C, or SIGTERM (a background job ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"checking {args.inputs} inputs (Ctrl-C: stop and sum up) ...", flush=True)
    run = Run(slow_after=args.slow)
    work = tasks(args.inputs, args.seed)
    with tempfile.TemporaryDirectory(prefix="gk-fuzz-") as tmp:
        url = prepare_store(Path(tmp))
        with multiprocessing.get_context("spawn").Pool(
            args.processes, _worker_init, (url,)
        ) as pool:
            outcomes = (o for unit in pool.imap_unordered(_check_unit, work) for o in unit)
            try:
                for outcome in outcomes:
                    run.add(outcome)
            except KeyboardInterrupt:
                print("  stopped: the sum of what was checked follows", flush=True)
                pool.terminate()
    counts, failures, slowest, peak = run.counts, run.failures, run.slowest, run.peak
    seconds = time.perf_counter() - run.started
    total = sum(counts.values())
    print(
        f"\n{total} inputs in {seconds:.0f} s ({total / seconds:.1f} inputs/s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    print(f"failures (exceptions or unread content released): {len(failures)}")
    for outcome in failures[:10]:
        print(
            f"  {outcome['family']}-{outcome['n']}: {outcome['failure'].strip().splitlines()[-1]}"
        )
    print("slowest inputs: " + ", ".join(f"{f}-{n} {s:.2f} s" for s, f, n in reversed(slowest)))
    print(f"inputs slower than {args.slow:.0f} s: {run.slow}; peak worker memory {peak:.0f} MB")
    (OUT / "summary.json").write_text(
        json.dumps(
            {
                "inputs": counts,
                "failures": len(failures),
                "seconds": seconds,
                "slower_than_limit": run.slow,
                "peak_rss_mb": peak,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
