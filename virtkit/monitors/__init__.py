"""Monitors: one module per model of server virtualization, the VMM code students read.

Each is ordinary Python around the hart's exit loop (``exit = vcpu.run(); match
exit.reason: ...``) and charges what it does to a virtkit.costs meter.

    hypervisor model 2, the type-1 hypervisor: many VMs on one machine, their vCPUs
               queued, dispatched by a pluggable scheduler (round robin, Xen's
               credit, stride) and executed for a slice
    fullvirt   model 4, full virtualization: an unmodified kernel deprivileged to
               U-mode, trap-and-emulate, shadow page tables, binary translation
    hardware   model 5, hardware-assisted: the unmodified kernel in VS-mode on the H
               extension, a G-stage table, devices and interrupts through HS-mode
    memory     guest-physical memory: the map every monitor keeps from a guest's
               "physical" pages to host pages
    inspect    what the lessons show of a monitor: its exits, one by one, and a guest
               walk next to its shadow walk
"""
