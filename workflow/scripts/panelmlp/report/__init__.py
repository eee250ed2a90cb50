"""The workflow's single, self-contained HTML report, one module per section.

- :mod:`.build`: reads the run and assembles the page (:func:`build_report`).
- :mod:`.inputs`: reading the run's tables; the report's view of a panel.
- :mod:`.verdict`: the headline, multiplicity warnings and per-panel verdicts.
- :mod:`.ranking`: the sortable table of all panels, best first.
- :mod:`.genesets`: kept panels and skipped gene sets with their reasons.
- :mod:`.accounting`: every input line and label accounted for; class balance.
- :mod:`.comparison`: panels against the baselines.
- :mod:`.nulls`: shuffled-label and random-gene-set nulls.
- :mod:`.detail`: each panel's figures, drawn when its details open.
- :mod:`.provenance`: configuration and package versions.
- :mod:`.figures`: figures as plain dicts; :mod:`.page`: HTML helpers.

Only the data stack and plotly (for plotly.js itself) are imported, never
torch or scikit-learn.
"""

from .build import build_report

__all__ = ["build_report"]
