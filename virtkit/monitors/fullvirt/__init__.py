"""Model 4, full virtualization: an unmodified guest kernel on a monitor in Python.

    from virtkit.monitors.fullvirt import FullVirtMonitor
    monitor = FullVirtMonitor(translate=False)      # trap-and-emulate
    monitor.load("tinyos.elf", cmdline="init=hello")
    monitor.run()

One concept per module:
    vcpu.py               the virtual CPU: virtual privilege, virtual S-level CSRs, time
    trap_and_emulate.py   emulating the guest kernel's privileged instructions; reflecting
                          traps into the guest kernel
    sbi.py                the SBI calls the monitor serves as the guest's firmware
    shadow_paging.py      shadow page tables: guest tables x guest-physical map
    devices.py            the guest's UART, PLIC, virtio-blk, through MMIO exits
    binary_translation.py translating guest-kernel code into a translation cache
    monitor.py            the exit loop that ties them together
"""

from virtkit.monitors.fullvirt.monitor import FullVirtMonitor, MonitorError, boot

__all__ = ["FullVirtMonitor", "MonitorError", "boot"]
