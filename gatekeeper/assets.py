"""Where the shipped policy and NLP assets are: inside the installed package, or the checkout.

A wheel carries `policies/` and `models/` as `gatekeeper/policies` and
`gatekeeper/nlp`; a source checkout (and an editable install run from it)
has them at the top level beside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def _locate(installed_name: str, checkout_name: str) -> Path:
    for candidate in (_PACKAGE / installed_name, _PACKAGE.parent / checkout_name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"Gatekeeper's {checkout_name}/ folder is missing from the installation: "
        "reinstall the package"
    )


def policies_dir() -> Path:
    """The shipped policies: `default.yaml` and the lexicons."""
    return _locate("policies", "policies")


def models_dir() -> Path:
    """The shipped NLP assets: pipeline settings, entity patterns and their provenance."""
    return _locate("nlp", "models")
