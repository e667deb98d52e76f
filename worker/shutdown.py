"""Graceful stop of a pool child: SIGTERM mid-batch saves the finished documents and gives the rest back.

``docker stop`` (and any supervisor) sends SIGTERM to the worker parent, whose warm shutdown
would wait for the running batch however long it takes, past the stop grace period, until the
SIGKILL. So the parent forwards SIGTERM to its pool child (:func:`forward_to_children`); the
child, while a batch runs, only sets :data:`STOP` (:func:`busy`): the batch stops between two
documents, writes what is done and releases the rest to ``pending`` for another worker
(``worker.batch.run_batch``). A child idle between batches exits at once, as it did before.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

STOP = threading.Event()
_BUSY = threading.Event()


def _on_term(signum: int, _frame: FrameType | None) -> None:
    if _BUSY.is_set():
        if not STOP.is_set():
            log.warning("SIGTERM: finishing the current document, then releasing the rest of the batch")
        STOP.set()
        return
    # Between batches nothing is lost: leave as the default disposition would.
    raise SystemExit(128 + signum)


@contextmanager
def busy() -> Iterator[None]:
    """Mark a batch as running: a SIGTERM now stops it between documents instead of killing.

    The handler is (re)installed here, not at process start: billiard resets the child's
    termination signals after ``worker_process_init`` has run.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)
    _BUSY.set()
    try:
        yield
    finally:
        _BUSY.clear()


def stopping() -> bool:
    """True once this process was asked to stop."""
    return STOP.is_set()


def forward_to_children() -> list[int]:
    """Send SIGTERM to this process's live children (the worker parent's pool); returns their pids."""
    from billiard import active_children  # the pool's processes are billiard's

    sent = []
    for child in active_children():
        if child.pid and child.pid != os.getpid():
            try:
                os.kill(child.pid, signal.SIGTERM)
                sent.append(child.pid)
            except ProcessLookupError:
                pass
    return sent
