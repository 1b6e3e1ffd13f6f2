"""Logging set-up for either process: one line per record on stderr."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """One line per record on stderr, the format container log collectors expect."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    # The kubernetes client logs request bodies at DEBUG, which can carry tokens.
    logging.getLogger("kubernetes").setLevel(max(logging.INFO, logging.getLogger().level))
    logging.getLogger("urllib3").setLevel(logging.WARNING)
