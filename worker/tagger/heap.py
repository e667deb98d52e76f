"""Keep a long-lived worker's heap from growing with every batch (glibc only).

Activations of different shapes are allocated and freed on every batch. glibc serves
large blocks with ``mmap`` only above a threshold it *raises* each time such a block is
freed, so after a few batches they come from the main heap, which fragments and is never
given back: on the 6-layer-384 model (1 thread, 400 MSRA sentences in calls of 64) peak
RSS grew to ~445-465 MiB. Two cures, measured on the same run:

- :func:`trim` (``malloc_trim(0)``) after each ``annotate`` call: peak ~410 MiB, +~5 % CPU
  at 1 thread (the freed pages are faulted in again by the next call). At 2 threads on the
  whole MSRA test set: 465-510 vs 615-650 MiB peak, but ~14k vs ~16.5k chars/s. The tagger
  does it by default (``Tagger(trim_interval=None)`` turns it off).
- :func:`pin_mmap_threshold`: peak ~355-390 MiB, but every activation is a fresh
  ``mmap`` whose pages fault in each time: ~2x CPU. Not used; kept for experiments.

Elsewhere (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h
DEFAULT_MMAP_THRESHOLD = 256 * 1024


@functools.cache  # find_library runs a lookup each time, and trim() runs after every annotate call
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc


def pin_mmap_threshold(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Serve allocations of ``threshold`` bytes or more with ``mmap``, always.

    Returns:
        Whether the setting took effect (``False`` off glibc).
    """
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1)


def trim() -> bool:
    """Give the heap's free pages back to the OS (``malloc_trim(0)``); ``False`` off glibc."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


MADV_DONTNEED = 4  # from <sys/mman.h> (Linux)


def file_mappings(path: str | Path) -> list[tuple[int, int]]:
    """Address ranges of this process's private mappings of ``path`` (``[]`` off Linux)."""
    target = str(Path(path).resolve())
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    ranges = []
    for line in maps:
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] == target and "p" in parts[1]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            ranges.append((lo, hi))
    return ranges


def release_pages(ranges: list[tuple[int, int]]) -> int:
    """Drop the resident pages of file mappings (from :func:`file_mappings`); bytes released.

    An artifact is loaded with ``torch.load(mmap=True)``: tensors the model keeps point into
    the mapping (embeddings, LayerNorms) and INT8 weights are read once to be packed into the
    kernel library's own layout. The pages read stay resident (and count in RSS) until
    dropped; ``MADV_DONTNEED`` on a private, unwritten file mapping frees them and a later
    access reads them back from the file, so this is safe at any time. Returns 0 off glibc.
    """
    libc = _libc()
    if libc is None:
        return 0
    return sum(hi - lo for lo, hi in ranges if libc.madvise(lo, hi - lo, MADV_DONTNEED) == 0)
