"""Entry-point helpers for the stage scripts: logging, params, and clean failure."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from chanest.checkpoint import CheckpointError
from chanest.params import ParamsError
from chanest.pdp import PDPError

#: Errors that are the user's input, reported in one line without a traceback.
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ParamsError, PDPError, CheckpointError, FileNotFoundError, KeyError, ValueError,
)


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("CHANEST_LOG", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def run(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; an input error exits 1 with its message, no traceback."""
    setup_logging()
    try:
        main()
    except INPUT_ERRORS as err:
        logging.getLogger("chanest").error("%s: %s", type(err).__name__, err)
        sys.exit(1)
