"""Synthetic cohorts in the real file's schema, for tests and benchmarks.

The layout mirrors the CPTAC extract: expression columns first, then
``PATIENT_ID``, ``SAMPLE_ID`` and clinical columns, ``NA`` for missing values,
and free text with unquoted commas on some lines (the malformation the real
file has). A planted signal shifts chosen genes with the smoking label, so a
workflow run can show that it finds signal where there is some.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

SMOKER_TEXTS = (
    "Current smoker: Includes daily and non-daily smokers",
    "Current reformed smoker within past 15 years",
    "Current reformed smoker, more than 15 years ",
)
NON_SMOKER_TEXT = "Lifelong non-smoker: Less than 100 cigarettes smoked in lifetime"
SITES = ("Frontal Lobe", "Temporal Lobe", "Parietal, Occipital, Temporal Lobe ", "Occipital lobe")
CLINICAL = (
    "PATIENT_ID",
    "SAMPLE_ID",
    "TUMOR_SITE_CURATED",
    "AGE",
    "SEX",
    "SMOKING_HISTORY",
    "VITAL_STATUS",
    "EXCLUDED_IN_DOWNSTREAM_ANALYSIS",
)


@dataclass
class SyntheticCohort:
    """What was written, for assertions."""

    path: Path
    genes: list[str]
    n_samples: int
    smokers: int
    non_smokers: int
    missing_history: int
    malformed_lines: list[int]
    """File line numbers (1-based) of lines with unquoted commas (repairable)."""
    broken_lines: list[int]
    """File line numbers of lines that cannot be repaired (quarantined)."""


def gene_names(n: int, planted: Sequence[str] = ()) -> list[str]:
    """``planted`` first, then ``G00001``-style names up to ``n`` genes."""
    names = list(planted)
    i = 1
    while len(names) < n:
        names.append(f"G{i:05d}")
        i += 1
    return names[:n]


def _format_rows(values: np.ndarray) -> list[str]:
    """Rows of numbers as comma-joined text with 6 decimals, formatted by pyarrow's CSV writer (fast)."""
    table = pa.table({str(i): pa.array(np.round(values[:, i], 6)) for i in range(values.shape[1])})
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return buffer.getvalue().decode().splitlines()


def write_cohort(
    path: str | Path,
    n_samples: int = 120,
    n_genes: int = 20,
    planted: Sequence[str] = ("SIG1", "SIG2"),
    effect: float = 2.0,
    smoker_fraction: float = 0.35,
    missing_history: int = 6,
    n_malformed: int = 5,
    n_broken: int = 0,
    seed: int = 0,
    chunk_rows: int = 256,
) -> SyntheticCohort:
    """Write a cohort CSV; planted genes are shifted by ``effect`` sd in smokers.

    ``n_malformed`` lines get a smoking history or tumour site with an unquoted
    comma (repairable); ``n_broken`` lines lose a field (must be quarantined).
    Writes in chunks so 20,000 genes x 2,000 samples fit in little memory.
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    genes = gene_names(n_genes, planted)
    n_planted = len([g for g in planted if g in genes])
    smoker = rng.random(n_samples) < smoker_fraction
    history_missing = np.zeros(n_samples, dtype=bool)
    history_missing[rng.choice(n_samples, size=min(missing_history, n_samples), replace=False)] = True
    malformed_rows = set(rng.choice(n_samples, size=min(n_malformed, n_samples), replace=False).tolist())
    remaining = [i for i in range(n_samples) if i not in malformed_rows]
    broken_rows = set(rng.choice(remaining, size=min(n_broken, len(remaining)), replace=False).tolist())
    base = rng.uniform(8, 18, size=n_genes)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(",".join([*genes, *CLINICAL]) + "\n")
        for start in range(0, n_samples, chunk_rows):
            rows = range(start, min(n_samples, start + chunk_rows))
            values = base + rng.normal(0, 1, size=(len(rows), n_genes))
            for j, i in enumerate(rows):
                if smoker[i]:
                    values[j, :n_planted] += effect
            text = _format_rows(values)
            for j, i in enumerate(rows):
                comma_in_history = i in malformed_rows and smoker[i] and not history_missing[i]
                site = SITES[2] if i in malformed_rows and not comma_in_history else SITES[i % 2]
                if history_missing[i]:
                    history = "NA"
                elif smoker[i]:
                    history = SMOKER_TEXTS[2] if comma_in_history else SMOKER_TEXTS[i % 2]
                else:
                    history = NON_SMOKER_TEXT
                clinical = [
                    f"P{i:05d}",
                    f"S-{i:05d}",
                    site,
                    str(40 + i % 40),
                    "Male" if i % 2 else "Female",
                    history,
                    "NA" if i % 7 == 0 else ("Deceased" if i % 3 else "Living"),
                    "FALSE",
                ]
                if i in broken_rows:
                    del clinical[-1]
                handle.write(text[j] + "," + ",".join(clinical) + "\n")
    return SyntheticCohort(
        path=path,
        genes=genes,
        n_samples=n_samples,
        smokers=int((smoker & ~history_missing).sum()),
        non_smokers=int((~smoker & ~history_missing).sum()),
        missing_history=int(history_missing.sum()),
        malformed_lines=sorted(i + 2 for i in malformed_rows),
        broken_lines=sorted(i + 2 for i in broken_rows),
    )


def split_cohort(
    source: str | Path,
    n_genes: int,
    expression: str | Path,
    samples: str | Path,
    orientation: str = "samples_in_rows",
    sep: str = ",",
) -> None:
    """Rewrite a one-table cohort (from :func:`write_cohort`) as an expression matrix and a sample sheet.

    Each line is cut after its ``n_genes`` expression fields: the clinical rest
    goes to the sample sheet verbatim (unquoted commas and broken lines
    included), the values to the matrix under the sample id, samples in rows
    or (``genes_in_rows``) genes in rows with the gene id first.
    """
    lines = Path(source).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    genes, clinical = header[:n_genes], header[n_genes:]
    id_at = clinical.index("SAMPLE_ID")
    ids, values, rest = [], [], []
    for line in lines[1:]:
        fields = line.split(",", n_genes)
        ids.append(fields[n_genes].split(",")[id_at])
        values.append(fields[:n_genes])
        rest.append(fields[n_genes])
    Path(samples).write_text("\n".join([",".join(clinical), *rest]) + "\n", encoding="utf-8")
    if orientation == "genes_in_rows":
        out = [sep.join(["gene", *ids])]
        out += [sep.join([gene] + [row[g] for row in values]) for g, gene in enumerate(genes)]
    else:
        out = [sep.join(["SAMPLE_ID", *genes])] + [sep.join([sid, *row]) for sid, row in zip(ids, values, strict=True)]
    Path(expression).write_text("\n".join(out) + "\n", encoding="utf-8")


def plant_numeric_target(
    path: str | Path, column: str, genes: Sequence[str], slope: float, noise: float, seed: int = 0, centre: float = 55.0
) -> None:
    """Rewrite ``column`` of a cohort from :func:`write_cohort` (without malformed lines) as a number driven by ``genes``.

    ``column = centre + slope * (sum of the genes' z-scores) + noise * N(0, 1)``:
    a regression target with planted signal in those genes and none in the others.
    """
    rng = np.random.default_rng(seed)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    if any(len(r) != len(header) for r in rows):
        raise ValueError("plant_numeric_target needs a cohort without malformed lines (n_malformed=0, n_broken=0)")
    at = header.index(column)
    values = np.array([[float(r[header.index(g)]) for g in genes] for r in rows])
    z = (values - values.mean(axis=0)) / values.std(axis=0)
    target = centre + slope * z.sum(axis=1) + noise * rng.normal(size=len(rows))
    for r, v in zip(rows, target, strict=True):
        r[at] = f"{v:.3f}"
    Path(path).write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")


SURVIVAL_COLUMNS = ("PATH_DIAG_TO_DEATH_DAYS", "PATH_DIAG_TO_LAST_CONTACT_DAYS")
"""The time columns :func:`plant_survival` adds, named as in the real cohort."""


def plant_survival(
    path: str | Path,
    genes: Sequence[str],
    beta: float = 1.0,
    censored: float = 0.35,
    median_days: float = 400.0,
    seed: int = 0,
) -> dict[str, int]:
    """Rewrite a cohort from :func:`write_cohort` (without malformed lines) as a survival cohort driven by ``genes``.

    Event times are exponential with hazard ``h0 * exp(beta * sum of the genes'
    z-scores)``, ``h0`` set so that the median time is about ``median_days``;
    censoring times are uniform on ``[0, c]`` with ``c`` chosen so that about
    ``censored`` of the samples are censored. ``VITAL_STATUS`` becomes
    ``Deceased`` or ``Living``; two columns are added (:data:`SURVIVAL_COLUMNS`):
    days to death (``NA`` for the living) and days to last contact (for
    everyone, as in the real cohort). Returns the counts of events and censored.
    """
    rng = np.random.default_rng(seed)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    if any(len(r) != len(header) for r in rows):
        raise ValueError("plant_survival needs a cohort without malformed lines (n_malformed=0, n_broken=0)")
    values = np.array([[float(r[header.index(g)]) for g in genes] for r in rows])
    z = (values - values.mean(axis=0)) / values.std(axis=0)
    risk = beta * z.sum(axis=1)
    h0 = np.log(2) / median_days / np.median(np.exp(risk))
    event_time = rng.exponential(1.0, len(rows)) / (h0 * np.exp(risk))
    u = rng.random(len(rows))
    lo, hi = 1e-3, 1e7
    for _ in range(200):  # bisection on the censoring window's end c
        c = (lo * hi) ** 0.5
        share = np.mean(u * c < event_time)
        lo, hi = (c, hi) if share > censored else (lo, c)
    censor_time = u * c
    event = event_time <= censor_time
    time = np.where(event, event_time, censor_time)
    status = header.index("VITAL_STATUS")
    header += list(SURVIVAL_COLUMNS)
    for r, e, t in zip(rows, event, time, strict=True):
        days = f"{max(round(t), 0)}"
        r[status] = "Deceased" if e else "Living"
        r += [days if e else "NA", days]
    Path(path).write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    return {"events": int(event.sum()), "censored": int((~event).sum())}
