"""The board: memory map, devices, firmware and program loading.

elf.py loads RV32 ELF images; baremetal.py runs one in M-mode with HTIF and the
SiFive test finisher.
"""
