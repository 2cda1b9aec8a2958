"""The hart: a Numba-compiled RV32IMA interpreter with M/S/U, Sv32, PMP and traps.

``Hart`` (hart.py) is the face students use; ``core.run`` is the compiled batch
entry point it calls. See virtkit.cpu.state for the state layout.
"""

from virtkit.cpu.exits import Exit
from virtkit.cpu.hart import Hart

__all__ = ["Exit", "Hart"]
