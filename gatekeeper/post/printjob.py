"""What the CUPS backend tells the letters service about a print job, and what it is told back.

Standard library only: the backend imports this module and must start in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum

JOB_HEADER = "X-Gatekeeper-Job"


class Action(StrEnum):
    """What the backend does with the job."""

    PRINT = "print"  # send the stamped PDF to the real printer
    HOLD = "hold"  # exit 3: CUPS holds the job until a checker approves it
    CANCEL = "cancel"  # exit 5: CUPS cancels the job; it must not print


@dataclass(frozen=True)
class PrintJob:
    """A CUPS job as its backend sees it (argv and environment)."""

    job_id: int
    user: str
    title: str
    copies: int
    queue: str  # the CUPS queue (printer) name
    server: str  # the CUPS server that runs the job, `host:port`

    def header(self) -> str:
        """The job as one ASCII header value."""
        return json.dumps(asdict(self), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_header(cls, value: str) -> PrintJob:
        """Raises ValueError for a header that is not a job."""
        try:
            raw = json.loads(value)
            return cls(
                job_id=int(raw["job_id"]),
                user=str(raw["user"]),
                title=str(raw.get("title", "")),
                copies=int(raw.get("copies", 1)),
                queue=str(raw.get("queue", "")),
                server=str(raw.get("server", "")),
            )
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a print job: {exc}") from None


@dataclass(frozen=True)
class Answer:
    """The letters service's answer to one job."""

    action: Action
    ref: str | None
    message: str  # one line for the job's state message in CUPS
    pdf: bytes | None = None  # the stamped letter, with PRINT
