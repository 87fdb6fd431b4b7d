"""training/allocator.py: the glibc policy is changed only inside the block, and can be switched off."""
from __future__ import annotations

import sys

import pytest
import torch

from omniad_lite.training import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux") or allocator._glibc() is None, reason="glibc only")
def test_keep_freed_memory_applies_and_restores(monkeypatch):
    calls = []
    libc = allocator._glibc()

    class Spy:  # records mallopt/malloc_trim, forwards to the real glibc
        def mallopt(self, param, value):
            calls.append((param, value))
            return libc.mallopt(param, value)

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return libc.malloc_trim(pad)

    monkeypatch.setattr(allocator, "_glibc", lambda: Spy())
    with allocator.keep_freed_memory() as changed:
        assert changed
        assert calls == [(allocator.M_MMAP_MAX, 0), (allocator.M_TRIM_THRESHOLD, allocator.KEEP_TRIM_THRESHOLD)]
        x = torch.randn(1 << 22) + 1  # tensors still allocate and compute normally
        assert torch.isfinite(x).all()
    assert calls[2:] == [(allocator.M_MMAP_MAX, allocator.DEFAULT_MMAP_MAX),
                         (allocator.M_TRIM_THRESHOLD, allocator.DEFAULT_TRIM_THRESHOLD), ("trim", 0)]


def test_keep_freed_memory_off_switches(monkeypatch):
    with allocator.keep_freed_memory(enabled=False) as changed:
        assert not changed
    monkeypatch.setenv(allocator.ENV_SWITCH, "system")
    with allocator.keep_freed_memory() as changed:
        assert not changed


def test_restored_even_when_the_block_raises(monkeypatch):
    restored = []

    class Fake:
        def mallopt(self, param, value):
            restored.append((param, value))

        def malloc_trim(self, pad):
            restored.append("trim")

    monkeypatch.setattr(allocator, "_glibc", Fake)
    with pytest.raises(KeyboardInterrupt), allocator.keep_freed_memory():
        raise KeyboardInterrupt
    assert restored[-1] == "trim"
