"""Monitors: one module per model of server virtualization, the VMM code students read.

Each is ordinary Python around the hart's exit loop (``exit = vcpu.run(); match
exit.reason: ...``) and charges what it does to a virtkit.costs meter.

    fullvirt   model 4, full virtualization: an unmodified kernel deprivileged to
               U-mode, trap-and-emulate, shadow page tables, binary translation
    memory     guest-physical memory: the map every monitor keeps from a guest's
               "physical" pages to host pages
"""
