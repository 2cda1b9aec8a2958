"""virtkit: teach server virtualization on an emulated RISC-V machine.

Students run real guest code on a Numba-compiled RV32 hart and watch, change and grade
the software that virtualizes it, across the seven models of server virtualization
(hosted VMM, hypervisor, para-virtualization, full virtualization, hardware
virtualization with the H extension, KVM-style kernel-based virtualization, and
containers).

The layers, from the bottom up: virtkit.isa (encodings, CSR and cause tables, assembler,
disassembler), virtkit.cpu (the hart), virtkit.machine (the board), virtkit.hostos (a host
kernel in Python), virtkit.monitors (one module per model) and virtkit.ui (widgets and
plots). `virtkit lab` opens the lessons in JupyterLab.
"""

__version__ = "0.1.0"
