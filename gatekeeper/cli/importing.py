"""Shared by `cases import` and `users import`: open, load with progress, report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

import click
from sqlalchemy import Engine

from gatekeeper.cli.progress import byte_progress
from gatekeeper.store.importer import ImportReport, Progress


def run_import(
    engine: Engine,
    path: str,
    load: Callable[[Engine, Iterable[bytes], Progress | None], ImportReport],
    label: str,
) -> ImportReport:
    """Import `path` (or `-` for standard input); rejections on stderr, summary on stdout."""
    if path == "-":
        stream = sys.stdin.buffer
        total = None
    else:
        try:
            stream = open(path, "rb")  # noqa: SIM115  (closed below; stdin must stay open)
        except OSError as exc:
            raise click.FileError(path, exc.strerror) from None
        total = os.fstat(stream.fileno()).st_size
    try:
        with byte_progress(total, label) as progress:
            report = load(engine, stream, progress)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    for rejection in report.rejected:
        click.echo(f"{path}: rejected {rejection}", err=True)
    click.echo(report.summary())
    return report
