"""The hart: a Numba-compiled RV32IMA interpreter with M/S/U, the H extension (HS, VS
and VU modes, two-stage translation), Sv32, PMP and traps.

``Hart`` (hart.py) is the face students use; ``core.run`` is the compiled batch
entry point it calls. See virtkit.cpu.state for the state layout.
"""

# First: the cache locators must be in place before any core function is decorated.
from virtkit.cpu import jitcache  # noqa: F401  (registers Numba cache locators)
from virtkit.cpu.exits import Exit
from virtkit.cpu.hart import Hart

__all__ = ["Exit", "Hart"]
