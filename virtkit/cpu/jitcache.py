"""Numba's on-disk cache for the core, invalidated when any of the core's sources change.

Numba checks a cached function against the source file that defines it, and bakes
module-level constants into the compiled code. The core's functions read constants
from other modules (the state layout in state.py, the CSR and instruction tables in
virtkit.isa), so a change there would leave stale compiled code in the cache that
still passes Numba's check: a new slot number in state.py, say, with old code that
writes the old one. Here every core function's cache carries one stamp, a digest of
all those sources together, so a change to any of them recompiles the whole core.

This uses Numba's cache locator classes (numba.core.caching), which are not public
API; tests/test_jitcache.py checks that it works with the installed Numba.

The core's modules also take their ``njit`` from here: Numba's, without the C-callable
wrapper it otherwise compiles for every function.

What a cold compile costs grows with the number of compiled functions, and with how
deep they call each other. Each one goes through Numba and LLVM on its own, with its
Python wrapper and its cache entry, and every caller links in the code of all the
functions below it and optimizes and compiles it to machine code again. So a small
helper with one caller is marked ``inline="always"``: Numba then compiles it as part
of its caller (it can still be called from Python, where it is compiled on its own at
first use). Not for a helper of ``execute``: inlining into a function that large costs
Numba more than it saves.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
from numba.core import caching


def njit(*args, **options):
    """``numba.njit`` without the "cfunc" wrapper, which serves calls through a C
    function pointer (ctypes, cffi, first-class function values) that the core never
    makes. Calls from Python and between compiled functions are unaffected. Leaving the
    wrapper out took about 3 s off a cold compile (of 70-odd functions then, 54 now)."""
    return numba.njit(*args, no_cfunc_wrapper=True, **options)


_PACKAGE = Path(__file__).resolve().parent.parent
# The compiled modules and everything they take constants from.
_SOURCES = [
    *(_PACKAGE / "cpu" / name for name in ("core.py", "csrfile.py", "decode.py", "exits.py")),
    *(_PACKAGE / "cpu" / name for name in ("jitcache.py", "mmu.py", "state.py", "trap.py")),
    *(_PACKAGE / "isa" / name for name in ("causes.py", "csrs.py", "instructions.py")),
]
_CORE_DIRECTORY = _PACKAGE / "cpu"


def _digest() -> str:
    digest = hashlib.sha256()
    for path in _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


CORE_STAMP = _digest()


def _is_core(py_file: str) -> bool:
    return Path(py_file).resolve().parent == _CORE_DIRECTORY


class _CoreStamp:
    """Mixed into Numba's locators: the stamp of all core sources, not of one file."""

    def get_source_stamp(self):
        return CORE_STAMP

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _is_core(py_file):
            return None
        return super().from_function(py_func, py_file)


class CoreUserProvidedCacheLocator(_CoreStamp, caching.UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR, when set."""


class CoreInTreeCacheLocator(_CoreStamp, caching.InTreeCacheLocator):
    """__pycache__ next to the sources, when writable."""


class CoreUserWideCacheLocator(_CoreStamp, caching.UserWideCacheLocator):
    """The user's cache directory, when the package directory is read-only."""


_LOCATORS = [CoreUserProvidedCacheLocator, CoreInTreeCacheLocator, CoreUserWideCacheLocator]
# CacheImpl since Numba 0.59 (_CacheImpl before).
_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl
if _IMPL._locator_classes[0] is not _LOCATORS[0]:
    _IMPL._locator_classes[:0] = _LOCATORS
