# M, A, Zicsr, Zifencei, the privileged instructions and the H extension.
    .option norelax
    .text
_start:
    mul     a0, a1, a2
    mulh    a3, a4, a5
    mulhsu  t0, t1, t2
    mulhu   s0, s1, s2
    div     x1, x2, x3
    divu    x4, x5, x6
    rem     x7, x8, x9
    remu    x10, x11, x12

    lr.w        a0, (a1)
    lr.w.aq     a0, (a1)
    lr.w.rl     a0, 0(a1)
    lr.w.aqrl   t0, (sp)
    sc.w        a0, a1, (a2)
    sc.w.aq     a0, a1, (a2)
    sc.w.rl     a0, a1, (a2)
    sc.w.aqrl   a0, a1, (a2)
    amoswap.w   a0, a1, (a2)
    amoswap.w.aq a3, a4, (a5)
    amoadd.w    a0, a1, (a2)
    amoadd.w.rl a0, a1, 0(a2)
    amoxor.w    t0, t1, (t2)
    amoand.w    s0, s1, (s2)
    amoor.w.aqrl s3, s4, (s5)
    amomin.w    a0, a1, (a2)
    amomax.w    a0, a1, (a2)
    amominu.w   a0, a1, (a2)
    amomaxu.w.aq a0, a1, (a2)

    csrrw   a0, mstatus, a1
    csrrs   a0, mie, zero
    csrrc   t0, sstatus, t1
    csrrw   x0, 0x340, x5
    csrrs   a0, cycle, x0
    csrrc   a0, hgatp, a1
    csrrwi  a0, mtvec, 0
    csrrsi  a0, sie, 31
    csrrci  a0, 0x7a0, 17
    csrrw   a0, satp, a1
    csrrs   a1, vsatp, a2
    csrrs   a2, pmpaddr15, zero
    csrrs   a3, mhpmcounter31h, zero
    csrrs   a4, hgeip, zero
    csrrs   a5, mhartid, zero
    fence.i

    sret
    mret
    wfi
    sfence.vma zero, zero
    sfence.vma a0, a1
    hfence.vvma a0, a1
    hfence.gvma t0, t1
    hlv.b   a0, (a1)
    hlv.bu  a0, (a1)
    hlv.h   a0, (a1)
    hlv.hu  a0, 0(a1)
    hlvx.hu a0, (a1)
    hlv.w   t0, (sp)
    hlvx.wu t1, (sp)
    hsv.b   a0, (a1)
    hsv.h   a0, (a1)
    hsv.w   s0, (s1)
