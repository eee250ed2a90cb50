"""Shared fixtures: a small generated cohort, and the real cohort when present."""

from __future__ import annotations

from pathlib import Path

import pytest
from panelmlp.synthetic import SyntheticCohort, write_cohort

REPO = Path(__file__).resolve().parents[1]
REAL_CSV = REPO.parent / "shared" / "data" / "gbm_data.csv"


@pytest.fixture(scope="session")
def real_csv() -> Path:
    """The real CPTAC cohort; tests that need it skip when it is absent."""
    if not REAL_CSV.is_file():
        pytest.skip(f"{REAL_CSV} not present")
    return REAL_CSV


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCohort:
    """120 samples, 20 genes, signal planted in SIG1 and SIG2, 5 malformed lines, 2 broken ones."""
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    return write_cohort(path, n_samples=120, n_genes=20, n_malformed=5, n_broken=2, seed=3)
