"""The letters service (`gatekeeper post serve`): one gate, kept warm, for every print job.

The CUPS backend runs once per job and must not load the case record itself
(tens of seconds on a large record), so it hands each job to this service:

- `POST /letters` (the PDF; the job in the `X-Gatekeeper-Job` header): stored,
  checked and decided; the answer says print (with the stamped PDF), hold or
  cancel, and the one line CUPS shows for the job.
- `POST /letters/{ref}/printed`: the real printer's backend finished (or failed).
- `GET /healthz`: 200 once the gate is loaded and the store answers, else 503.
- `GET /metrics`: Prometheus text format.

The gate runs in one thread of its own, so jobs are checked one at a time in
arrival order while the event loop keeps answering health checks. A sweep
releases or cancels the CUPS jobs of letters decided while CUPS could not be
reached, and the case record is reloaded when an import changes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatekeeper.config import ConfigError, Settings
from gatekeeper.decision import Decision
from gatekeeper.item import Item
from gatekeeper.post.address_block import AddressWindow
from gatekeeper.post.intake import Handled, LetterIntake
from gatekeeper.post.jobs import act_on_decided_letter, undone_decisions
from gatekeeper.post.printjob import JOB_HEADER, PrintJob

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
MAX_JOB_BYTES = 200 * 1024 * 1024
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60)


class LettersMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.letters = Counter(
            "gatekeeper_letters",
            "Print jobs by what the service answered.",
            ["outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "gatekeeper_letters_decision_seconds",
            "From a job's arrival to the answer (store, read, check, stamp).",
            buckets=_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "gatekeeper_letters_stage_seconds",
            "Time per stage (read, analysis, checks, stamp).",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.pages = Counter("gatekeeper_letters_pages", "Pages of released letters.", registry=r)
        self.printed = Counter(
            "gatekeeper_letters_printed", "Printer backend results.", ["outcome"], registry=r
        )
        self.job_actions = Counter(
            "gatekeeper_letters_job_actions",
            "Held CUPS jobs released or cancelled after a decision.",
            ["action"],
            registry=r,
        )
        self.gate_ready = Gauge(
            "gatekeeper_letters_gate_ready", "1 once the gate is loaded.", registry=r
        )


class LettersService:
    def __init__(self, settings: Settings) -> None:
        try:
            AddressWindow.parse(settings.letter_window)
        except ValueError as exc:
            raise ConfigError(f"letter_window: {exc}") from None
        self.settings = settings
        self.metrics = LettersMetrics()
        self.gate_thread = ThreadPoolExecutor(1, thread_name_prefix="letters-gate")
        self.store_threads = ThreadPoolExecutor(4, thread_name_prefix="letters-store")
        self.engine: Engine | None = None
        self.intake: LetterIntake | None = None
        self.gate: Any = None
        self.ready = asyncio.Event()
        self.store_ok = True
        self._tasks: list[asyncio.Task[None]] = []
        self.app = Starlette(
            routes=[
                Route("/letters", self.submit, methods=["POST"]),
                Route("/letters/{ref}/printed", self.printed, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.render_metrics, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    # -- life -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        from gatekeeper.smtp.notices import node_name
        from gatekeeper.smtp.relay import open_durable_store

        loop = asyncio.get_running_loop()
        url = self.settings.effective_database_url
        self.engine = await loop.run_in_executor(self.store_threads, open_durable_store, url)
        self.intake = LetterIntake(
            self.engine, self.settings, check=self._check, node=node_name(self.settings)
        )
        self._tasks.append(loop.create_task(self._load_gate(), name="load-gate"))
        self._tasks.append(loop.create_task(self._sweep(), name="sweep"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.gate_thread.shutdown(wait=True, cancel_futures=True)
        self.store_threads.shutdown(wait=True, cancel_futures=True)
        if self.engine is not None:
            self.engine.dispose()
        log.info("letters service stopped")

    def _check(self, item: Item) -> Decision:
        decision: Decision = self.gate.check(item)
        return decision

    def _build_gate(self) -> Any:
        from gatekeeper.gate import Gate

        assert self.engine is not None
        return Gate.from_store(self.engine, self.settings)

    async def _load_gate(self) -> None:
        """Load the gate (in its own thread), then reload it whenever the record changes."""
        from gatekeeper.smtp.relay import record_version

        loop = asyncio.get_running_loop()
        assert self.engine is not None
        started = time.perf_counter()
        version = await loop.run_in_executor(self.store_threads, record_version, self.engine)
        self.gate = await loop.run_in_executor(self.gate_thread, self._build_gate)
        self.ready.set()
        self.metrics.gate_ready.set(1)
        log.info("gate ready", extra={"seconds": round(time.perf_counter() - started, 1)})
        refresh = self.settings.record_refresh_seconds
        while refresh > 0:
            await asyncio.sleep(refresh)
            try:
                now = await loop.run_in_executor(self.store_threads, record_version, self.engine)
                if now != version:
                    self.gate = await loop.run_in_executor(self.gate_thread, self._build_gate)
                    version = now
                    log.info("reloaded the case record", extra={"record": [str(v) for v in now]})
            except Exception as exc:
                log.error("could not reload the case record: %s", exc)

    async def _sweep(self) -> None:
        """Release or cancel the print jobs of letters decided while CUPS was out of reach."""
        loop = asyncio.get_running_loop()
        assert self.engine is not None
        engine = self.engine
        while True:
            try:
                late = dt.timedelta(seconds=2 * self.settings.letters_timeout)
                for item_id in await loop.run_in_executor(
                    self.store_threads, undone_decisions, engine, late
                ):
                    outcome = await loop.run_in_executor(
                        self.store_threads, act_on_decided_letter, engine, self.settings, item_id
                    )
                    self.metrics.job_actions.labels(outcome.action).inc()
                await loop.run_in_executor(self.store_threads, _ping, engine)
                self.store_ok = True
            except Exception as exc:
                self.store_ok = False
                log.error("letters sweep failed: %s", exc)
            await asyncio.sleep(SWEEP_SECONDS)

    def problems(self) -> list[str]:
        found = []
        if not self.ready.is_set():
            found.append("the gate is loading")
        if not self.store_ok:
            found.append("the store does not answer")
        return found

    # -- routes ---------------------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            job = PrintJob.from_header(request.headers.get(JOB_HEADER, ""))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_JOB_BYTES:
            return JSONResponse({"error": "print job too large to check"}, status_code=413)
        pdf = await request.body()
        try:
            await asyncio.wait_for(self.ready.wait(), self.settings.letters_timeout)
        except TimeoutError:
            return JSONResponse({"error": "the gate is still loading"}, status_code=503)
        assert self.intake is not None
        loop = asyncio.get_running_loop()
        try:
            handled: Handled = await loop.run_in_executor(
                self.gate_thread, self.intake.handle, job, pdf
            )
        except Exception as exc:
            log.exception("could not handle a print job", extra={"job": job.job_id})
            self.metrics.letters.labels("error").inc()
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)
        elapsed = time.perf_counter() - started
        self.metrics.latency.observe(elapsed)
        self.metrics.letters.labels(handled.outcome).inc()
        self.metrics.pages.inc(handled.pages)
        for stage, seconds in handled.stages.items():
            self.metrics.stages.labels(stage).observe(seconds)
        answer = handled.answer
        log.info(
            "decided",
            extra={
                "ref": answer.ref,
                "action": answer.action.value,
                "outcome": handled.outcome,
                "user": job.user,
                "job": job.job_id,
                "queue": job.queue,
                "ms": round(elapsed * 1000, 1),
            },
        )
        return JSONResponse(
            {
                "action": answer.action.value,
                "ref": answer.ref,
                "message": answer.message,
                "pdf": base64.b64encode(answer.pdf).decode("ascii") if answer.pdf else None,
            }
        )

    async def printed(self, request: Request) -> Response:
        try:
            body = await request.json()
            job_id, status = int(body["job_id"]), int(body["status"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected job_id and status"}, status_code=400)
        ref = request.path_params["ref"]
        assert self.intake is not None
        loop = asyncio.get_running_loop()
        known = await loop.run_in_executor(
            self.store_threads, self.intake.printed, ref, job_id, status
        )
        self.metrics.printed.labels("ok" if status == 0 else "failed").inc()
        log.info("printed" if status == 0 else "print failed", extra={"ref": ref, "job": job_id})
        return JSONResponse({"known": known}, status_code=200 if known else 404)

    async def healthz(self, _request: Request) -> Response:
        problems = self.problems()
        return JSONResponse(
            {"ok": not problems, "problems": problems}, status_code=503 if problems else 200
        )

    async def render_metrics(self, _request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- serving --------------------------------------------------------------------------

    async def serve(self) -> None:
        """Listen until SIGTERM or SIGINT (uvicorn stops gracefully on either)."""
        s = self.settings
        log.info(
            "letters service listening",
            extra={"socket": s.letters_socket} if s.letters_socket else {
                "host": s.letters_host, "port": s.letters_port
            },
        )  # fmt: skip
        await self.server().serve()

    def server(self) -> uvicorn.Server:
        """A uvicorn server for the service on its host and port, or socket (not yet started)."""
        import uvicorn

        s = self.settings
        where: dict[str, Any] = (
            {"uds": s.letters_socket} if s.letters_socket else {"host": s.letters_host}
        )
        config = uvicorn.Config(
            self.app,
            port=s.letters_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=5,
            **where,
        )
        return uvicorn.Server(config)

    async def wait_ready(self) -> None:
        """Until the gate is loaded (after `start`); raises why it could not be."""
        loading = next(task for task in self._tasks if task.get_name() == "load-gate")
        ready = asyncio.ensure_future(self.ready.wait())
        try:
            await asyncio.wait({ready, loading}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self.ready.is_set():
            loading.result()


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
