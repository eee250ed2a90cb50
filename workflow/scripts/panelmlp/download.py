"""Fetching the public raw CSV, checksum checked."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import PanelMlpError


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str, out: str | Path, timeout: float = 60.0) -> None:
    """Download ``url`` to ``out`` if its sha256 matches; nothing is left behind otherwise."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, delete=False, suffix=".part") as tmp:
        part = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, tmp)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            tmp.close()
            part.unlink(missing_ok=True)
            raise PanelMlpError(
                f"could not download {url} ({exc}); without network, copy the file to {out} "
                "or run with --config raw_csv=PATH"
            ) from None
    got = sha256_of(part)
    if got != sha256:
        part.unlink(missing_ok=True)
        raise PanelMlpError(
            f"{url}: sha256 is {got}, expected {sha256}; the file changed upstream, so check it and "
            "update download.sha256 in the config, or set raw_csv to a file you trust"
        )
    part.replace(out)
