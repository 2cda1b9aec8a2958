"""The core's Numba cache is keyed by all the sources the compiled code depends on."""

from __future__ import annotations

from virtkit.cpu import core, csrfile, jitcache, mmu, trap


def test_core_functions_use_the_stamp_of_all_core_sources():
    for function in (core.run, core.execute, mmu.translate, csrfile.write, trap.take):
        locator = function._cache._impl._locator
        assert isinstance(locator, jitcache._CoreStamp), function
        assert locator.get_source_stamp() == jitcache.CORE_STAMP


def test_the_stamp_covers_the_tables_the_core_reads():
    names = {path.name for path in jitcache._SOURCES}
    assert {"state.py", "core.py", "mmu.py", "csrs.py", "instructions.py"} <= names
