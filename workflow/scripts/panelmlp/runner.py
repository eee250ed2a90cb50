"""Running a step from a Snakemake rule script: logging, one-line errors, a quick exit."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import PanelMlpError


def run(log_files: Sequence[str], step: Callable[..., Any], exit_when_done: bool = True, **kwargs: Any) -> Any:
    """Call ``step(**kwargs)`` with logging to the rule's log file.

    A :class:`PanelMlpError` is written to the log and to stderr as one line
    starting ``panelmlp error:`` and ends the job with exit status 1; any other
    exception is a bug and keeps its traceback.

    With ``exit_when_done`` (what a rule script wants) the process ends right
    after a successful step, with logs and streams flushed but without the
    interpreter's teardown: unloading torch alone takes about a second per job,
    for nothing, since every output file is closed by then.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_files:
        handlers.append(logging.FileHandler(log_files[0], mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    try:
        result = step(**kwargs)
    except PanelMlpError as exc:
        logging.getLogger("panelmlp").error("panelmlp error: %s", exc)
        raise SystemExit(1) from None
    if not exit_when_done:
        return result
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
