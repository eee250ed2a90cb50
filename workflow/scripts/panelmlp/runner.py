"""Running a step from a Snakemake rule script: logging and one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import PanelMlpError


def run(log_files: Sequence[str], step: Callable[..., Any], **kwargs: Any) -> Any:
    """Call ``step(**kwargs)`` with logging to the rule's log file.

    A :class:`PanelMlpError` is written to the log and to stderr as one line
    starting ``panelmlp error:`` and ends the job with exit status 1; any other
    exception is a bug and keeps its traceback.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_files:
        handlers.append(logging.FileHandler(log_files[0], mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    try:
        return step(**kwargs)
    except PanelMlpError as exc:
        logging.getLogger("panelmlp").error("panelmlp error: %s", exc)
        raise SystemExit(1) from None
