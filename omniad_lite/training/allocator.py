"""CPU training: keep freed memory inside the process while training (glibc ``mallopt``).

A training step on a CPU allocates and frees the same large activation buffers at every step. With glibc's
default policy, blocks above the mmap threshold are returned to the operating system when freed and the
top of the heap is trimmed, so the next step takes page faults on every fresh page (the kernel zeroes it)
before any arithmetic: in ``torch.profiler`` this shows up as out-of-place element-wise ops costing several
times their in-place versions. During training we therefore ask glibc to serve every allocation from the
heap (``M_MMAP_MAX = 0``) and not to trim it (``M_TRIM_THRESHOLD`` very large), so freed buffers are reused;
afterwards the defaults are restored and the heap is trimmed (``malloc_trim``), returning the memory. The
peak memory of a step is unchanged; between steps the process keeps that peak. PyTorch's CPU performance
guide recommends the same effect through jemalloc/tcmalloc; this needs nothing installed.

Linux with glibc only (elsewhere, and with ``OMNIAD_LITE_MALLOC=system``, nothing is changed). Measured
effect: ``benchmarks/bench_vs_released.py`` (variants ``kit`` and ``kit-system-malloc``), docs/speed.md.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from contextlib import contextmanager
from typing import Iterator

ENV_SWITCH = "OMNIAD_LITE_MALLOC"  # "system": leave glibc's policy alone
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameter numbers (malloc.h)
KEEP_TRIM_THRESHOLD = 2 ** 31 - 1  # the largest value mallopt takes: in effect, never trim while training
DEFAULT_TRIM_THRESHOLD = 128 * 1024  # glibc's defaults (malloc.h: DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX)
DEFAULT_MMAP_MAX = 65536


def _glibc():
    """The C library when it is glibc (has ``mallopt`` and ``malloc_trim``), else ``None``."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018  (raises AttributeError on musl, macOS, ...)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


@contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Within the block, freed memory stays in the process; yields whether the policy was changed.

    Args:
        enabled: ``False`` (e.g. training on a GPU, where the CUDA caching allocator already reuses device
            memory) changes nothing.
    """
    libc = _glibc() if enabled and os.environ.get(ENV_SWITCH, "").lower() != "system" else None
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
