"""The download rule's fetch: checksum checked, clear messages without network."""

from __future__ import annotations

import hashlib

import pytest
from panelmlp.download import fetch, sha256_of
from panelmlp.errors import PanelMlpError


def test_fetch_checks_the_sha256(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("a,b\n1,2\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "data" / "raw" / "gbm.csv"
    fetch(source.as_uri(), digest, out)
    assert out.read_bytes() == source.read_bytes() and sha256_of(out) == digest
    bad = tmp_path / "bad.csv"
    with pytest.raises(PanelMlpError, match="sha256 is"):
        fetch(source.as_uri(), "0" * 64, bad)
    assert not bad.exists() and not list(tmp_path.glob("*.part"))


def test_no_network_says_where_to_put_the_file(tmp_path):
    out = tmp_path / "data" / "raw" / "gbm.csv"
    with pytest.raises(PanelMlpError) as info:
        fetch("http://127.0.0.1:9/gbm_data.csv", "0" * 64, out, timeout=5)
    message = str(info.value)
    assert f"copy the file to {out}" in message and "raw_csv=PATH" in message
    assert not out.exists() and not list(out.parent.glob("*.part"))
