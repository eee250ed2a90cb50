"""Versions of the packages behind a result, read without importing them."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

from . import __version__

PACKAGES = ("torch", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "plotly", "snakemake")


def library_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """panelmlp's, Python's and each installed package's version ('not installed' if absent)."""
    return dict(_versions(packages))


@functools.cache
def _versions(packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Looked up once per process: reading package metadata costs milliseconds per package."""
    out = {"panelmlp": __version__, "python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())
