/* A small S-mode kernel for QEMU's virt board, started by an SBI firmware.
 *
 * It prints through the NS16550A UART and through SBI DBCN, asks the firmware about
 * itself (SBI base extension), takes three timer interrupts through SBI set_timer,
 * takes UART receive interrupts through the PLIC until two keys have arrived, writes
 * and reads back a block of the virtio-blk disk in virtio-mmio slot 0 (when there is
 * one) and prints checksums, then shuts down through SBI SRST.
 * tests/test_qemu.py runs it on virtkit and on QEMU and compares the output.
 *
 * Built with -DMALFORMED it also sends the disk requests a careless driver would:
 * a buffer outside RAM, a sector past the end of the disk, an unknown request type
 * and, last, a descriptor chain that loops. The virtio spec says what the device must
 * answer; tests/test_qemu.py checks virtkit's answers (only virtkit's: QEMU does not
 * answer every one of them as the spec asks).
 */
#include <stdint.h>

#define UART0 0x10000000UL
#define UART_RBR 0 /* receiver buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LSR 5
#define UART_IER_ERBFI 0x01 /* interrupt when received data is available */
#define UART_FCR_FIFO_ENABLE 0x01 /* FIFOs on, receive trigger level 1 byte */
#define UART_LSR_DR 0x01 /* data ready: RBR holds a received byte */
#define UART_LSR_THRE 0x20
#define UART0_IRQ 10 /* QEMU virt: UART0 is PLIC interrupt source 10 */

#define EID_BASE 0x10
#define EID_TIME 0x54494D45
#define EID_HSM 0x48534D
#define EID_SRST 0x53525354
#define EID_DBCN 0x4442434E

#define SIE_STIE (1 << 5) /* supervisor timer interrupt enable */
#define SIE_SEIE (1 << 9) /* supervisor external interrupt enable (the PLIC) */
#define SSTATUS_SIE (1 << 1)
#define SCAUSE_S_TIMER 0x80000005u
#define SCAUSE_S_EXTERNAL 0x80000009u
#define TIMER_INTERVAL 1000
#define KEYS_EXPECTED 2

struct sbiret {
    long error;
    long value;
};

static struct sbiret sbi_call(long eid, long fid, long arg0, long arg1, long arg2)
{
    register long a0 __asm__("a0") = arg0;
    register long a1 __asm__("a1") = arg1;
    register long a2 __asm__("a2") = arg2;
    register long a6 __asm__("a6") = fid;
    register long a7 __asm__("a7") = eid;
    __asm__ volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a2), "r"(a6), "r"(a7) : "memory");
    return (struct sbiret){a0, a1};
}

static void uart_putc(char c)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART0;
    while (!(uart[UART_LSR] & UART_LSR_THRE))
        ;
    uart[UART_THR] = c;
}

static void puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

static void put_hex(uint32_t value)
{
    puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4)
        uart_putc("0123456789abcdef"[(value >> shift) & 15]);
}

static void put_dec(long value)
{
    char digits[12];
    int n = 0;
    if (value < 0) {
        uart_putc('-');
        value = -value;
    }
    do {
        digits[n++] = '0' + value % 10;
        value /= 10;
    } while (value);
    while (n)
        uart_putc(digits[--n]);
}

static void dbcn_write(const char *s)
{
    long n = 0;
    while (s[n])
        n++;
    sbi_call(EID_DBCN, 0, n, (long)(uintptr_t)s, 0);
}

/* -- Timer --------------------------------------------------------------------------- */

static volatile int ticks;

static uint64_t rdtime(void)
{
    uint32_t hi, lo, again;
    do {
        __asm__ volatile("rdtimeh %0" : "=r"(hi));
        __asm__ volatile("rdtime %0" : "=r"(lo));
        __asm__ volatile("rdtimeh %0" : "=r"(again));
    } while (hi != again);
    return (uint64_t)hi << 32 | lo;
}

static void set_timer(uint64_t when)
{
    sbi_call(EID_TIME, 0, (long)(uint32_t)when, (long)(uint32_t)(when >> 32), 0);
}

static void timer_interrupt(void)
{
    ticks++;
    puts("tick ");
    put_dec(ticks);
    puts("\n");
    if (ticks < 3)
        set_timer(rdtime() + TIMER_INTERVAL);
    else
        set_timer(~0ULL); /* no more timer interrupts; this also clears STIP */
}

/* -- PLIC and UART receive interrupts ------------------------------------------------------
 *
 * The PLIC (RISC-V PLIC Specification 1.0.0, "Memory Map") gathers the devices'
 * interrupt lines and signals one hart context. On QEMU virt context 1 is hart 0 in
 * S-mode: its pending, enabled source with a priority above its threshold raises
 * sip.SEIP. The kernel claims the source (a read of the claim register says which),
 * serves the device, and completes it (writes the id back) to allow the next one.
 */

#define PLIC 0x0C000000UL
#define PLIC_S_CONTEXT 1
#define PLIC_PRIORITY(source) (*(volatile uint32_t *)(PLIC + 4 * (source)))
#define PLIC_ENABLE(ctx) (*(volatile uint32_t *)(PLIC + 0x2000 + 0x80 * (ctx))) /* sources 0..31 */
#define PLIC_THRESHOLD(ctx) (*(volatile uint32_t *)(PLIC + 0x200000 + 0x1000 * (ctx)))
#define PLIC_CLAIM(ctx) (*(volatile uint32_t *)(PLIC + 0x200004 + 0x1000 * (ctx)))

static volatile int keys;

static void uart_interrupts_on(void)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART0;
    PLIC_PRIORITY(UART0_IRQ) = 1; /* priority 0 would mean "never interrupt" */
    PLIC_ENABLE(PLIC_S_CONTEXT) = 1u << UART0_IRQ;
    PLIC_THRESHOLD(PLIC_S_CONTEXT) = 0; /* let every priority above 0 through */
    uart[UART_FCR] = UART_FCR_FIFO_ENABLE; /* an interrupt for every byte */
    uart[UART_IER] = UART_IER_ERBFI;
    __asm__ volatile("csrs sie, %0" ::"r"(SIE_SEIE));
}

static void external_interrupt(void)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART0;
    uint32_t source = PLIC_CLAIM(PLIC_S_CONTEXT);
    if (source == UART0_IRQ) {
        /* Take every byte that is there: the UART's line goes down when RBR is empty. */
        while (uart[UART_LSR] & UART_LSR_DR) {
            char c = uart[UART_RBR];
            puts("uart irq: got '");
            uart_putc(c);
            puts("'\n");
            keys++;
        }
    } else if (source != 0) { /* 0: another context claimed it first; nothing to do */
        puts("unexpected interrupt source ");
        put_dec(source);
        puts("\n");
    }
    if (source != 0)
        PLIC_CLAIM(PLIC_S_CONTEXT) = source; /* complete */
}

void trap_handler(void)
{
    uint32_t scause;
    __asm__ volatile("csrr %0, scause" : "=r"(scause));
    if (scause == SCAUSE_S_TIMER) {
        timer_interrupt();
    } else if (scause == SCAUSE_S_EXTERNAL) {
        external_interrupt();
    } else {
        puts("unexpected trap ");
        put_hex(scause);
        puts("\n");
        sbi_call(EID_SRST, 0, 0, 1, 0);
    }
}

/* -- virtio-blk on virtio-mmio slot 0 (virtio 1.2, 4.2.2 and 5.2) --------------------- */

#define VIRTIO0 0x10001000UL
#define VIRTIO_MAGIC 0x74726976 /* "virt" */
#define R(offset) (*(volatile uint32_t *)(VIRTIO0 + (offset)))
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC_LOW 0x080
#define MMIO_QUEUE_DESC_HIGH 0x084
#define MMIO_QUEUE_DRIVER_LOW 0x090
#define MMIO_QUEUE_DRIVER_HIGH 0x094
#define MMIO_QUEUE_DEVICE_LOW 0x0a0
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_DEVICE_NEEDS_RESET 64
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define MMIO_CONFIG_CAPACITY_LOW 0x100 /* 5.2.4: capacity in 512-byte sectors */
#define QUEUE_SIZE 8

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[QUEUE_SIZE];
};
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct {
        uint32_t id;
        uint32_t len;
    } ring[QUEUE_SIZE];
};
struct virtio_blk_req {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

static struct virtq_desc desc[QUEUE_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static volatile struct virtq_used used __attribute__((aligned(4)));
static struct virtio_blk_req request;
static volatile uint8_t request_status;
static uint8_t block[512];

static int virtio_blk_init(void)
{
    if (R(MMIO_MAGIC) != VIRTIO_MAGIC || R(MMIO_VERSION) != 2 || R(MMIO_DEVICE_ID) != 2)
        return 0;
    R(MMIO_STATUS) = 0;
    R(MMIO_STATUS) = STATUS_ACKNOWLEDGE;
    R(MMIO_STATUS) = STATUS_ACKNOWLEDGE | STATUS_DRIVER;
    R(MMIO_DRIVER_FEATURES_SEL) = 1;
    R(MMIO_DRIVER_FEATURES) = 1; /* VIRTIO_F_VERSION_1 (bit 32) and nothing else */
    R(MMIO_DRIVER_FEATURES_SEL) = 0;
    R(MMIO_DRIVER_FEATURES) = 0;
    R(MMIO_STATUS) = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;
    if (!(R(MMIO_STATUS) & STATUS_FEATURES_OK))
        return 0;
    R(MMIO_QUEUE_SEL) = 0;
    if (R(MMIO_QUEUE_NUM_MAX) < QUEUE_SIZE)
        return 0;
    R(MMIO_QUEUE_NUM) = QUEUE_SIZE;
    R(MMIO_QUEUE_DESC_LOW) = (uint32_t)(uintptr_t)desc;
    R(MMIO_QUEUE_DESC_HIGH) = 0;
    R(MMIO_QUEUE_DRIVER_LOW) = (uint32_t)(uintptr_t)&avail;
    R(MMIO_QUEUE_DRIVER_HIGH) = 0;
    R(MMIO_QUEUE_DEVICE_LOW) = (uint32_t)(uintptr_t)&used;
    R(MMIO_QUEUE_DEVICE_HIGH) = 0;
    R(MMIO_QUEUE_READY) = 1;
    R(MMIO_STATUS) = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
    return 1;
}

/* Fill in the three descriptors of one request (5.2.6): the header the device reads,
   the data buffer (the device writes it for a read, reads it for a write), and the
   status byte the device writes. They form a chain through "next" (2.7.5). */
static void virtio_blk_prepare(uint32_t type, uint64_t sector, uintptr_t data)
{
    request.type = type;
    request.reserved = 0;
    request.sector = sector;
    request_status = 0xff;
    desc[0] = (struct virtq_desc){(uintptr_t)&request, sizeof request, VIRTQ_DESC_F_NEXT, 1};
    desc[1] = (struct virtq_desc){data, sizeof block,
                                  VIRTQ_DESC_F_NEXT | (type == VIRTIO_BLK_T_OUT ? 0 : VIRTQ_DESC_F_WRITE), 2};
    desc[2] = (struct virtq_desc){(uintptr_t)&request_status, 1, VIRTQ_DESC_F_WRITE, 0};
}

/* Offer the chain at descriptor 0 in the available ring (2.7.6), notify the device, and
   wait until it appears in the used ring (2.7.8), or until the device gives up on the
   queue and asks for a reset (2.1.2): then the request is never used. */
static int virtio_blk_submit(void)
{
    uint16_t seen = used.idx;
    avail.ring[avail.idx % QUEUE_SIZE] = 0;
    __sync_synchronize();
    avail.idx++;
    __sync_synchronize();
    R(MMIO_QUEUE_NOTIFY) = 0;
    while (used.idx == seen && !(R(MMIO_STATUS) & STATUS_DEVICE_NEEDS_RESET))
        ;
    R(MMIO_INTERRUPT_ACK) = R(MMIO_INTERRUPT_STATUS);
    return request_status;
}

/* One read or write of a sector into or from `block`. */
static int virtio_blk_rw(uint32_t type, uint64_t sector)
{
    virtio_blk_prepare(type, sector, (uintptr_t)block);
    return virtio_blk_submit();
}

static uint32_t checksum(const uint8_t *data, int size)
{
    uint32_t sum = 0;
    for (int i = 0; i < size; i++)
        sum = sum * 31 + data[i];
    return sum;
}

static void disk_test(void)
{
    if (!virtio_blk_init()) {
        puts("no virtio-blk disk\n");
        return;
    }
    int status = virtio_blk_rw(VIRTIO_BLK_T_IN, 0);
    puts("disk: sector 0 read, status ");
    put_dec(status);
    puts(", checksum ");
    put_hex(checksum(block, sizeof block));
    puts("\n");
    for (int i = 0; i < (int)sizeof block; i++)
        block[i] = (uint8_t)(i * 7 + 3);
    uint32_t written = checksum(block, sizeof block);
    status = virtio_blk_rw(VIRTIO_BLK_T_OUT, 1);
    puts("disk: sector 1 written, status ");
    put_dec(status);
    puts("\n");
    for (int i = 0; i < (int)sizeof block; i++)
        block[i] = 0;
    status = virtio_blk_rw(VIRTIO_BLK_T_IN, 1);
    puts("disk: sector 1 read back, status ");
    put_dec(status);
    puts(checksum(block, sizeof block) == written ? ", checksum matches " : ", checksum DIFFERS ");
    put_hex(written);
    puts("\n");
}

#ifdef MALFORMED
/* Requests a careless driver could make, and what virtio 1.2 says the device answers:
   an error status in the request's status byte when it can write one (5.2.6), and
   DEVICE_NEEDS_RESET in the device status when the chain itself is broken (2.1.2). */
static void malformed_disk_test(void)
{
    puts("malformed: data buffer at 0x00001000 (outside RAM), status ");
    virtio_blk_prepare(VIRTIO_BLK_T_IN, 0, 0x1000);
    put_dec(virtio_blk_submit()); /* VIRTIO_BLK_S_IOERR */
    puts("\n");

    uint32_t capacity = R(MMIO_CONFIG_CAPACITY_LOW);
    puts("malformed: read of sector ");
    put_dec(capacity);
    puts(" (past the end of the disk), status ");
    put_dec(virtio_blk_rw(VIRTIO_BLK_T_IN, capacity)); /* VIRTIO_BLK_S_IOERR */
    puts("\n");

    puts("malformed: request type 0x1234, status ");
    put_dec(virtio_blk_rw(0x1234, 0)); /* VIRTIO_BLK_S_UNSUPP */
    puts("\n");

    /* Last, because it breaks the queue: descriptor 2 leads back to descriptor 1, so
       the chain never ends. The device cannot know where the status byte is; it stops
       using the queue and sets DEVICE_NEEDS_RESET until the driver resets it. */
    virtio_blk_prepare(VIRTIO_BLK_T_IN, 0, (uintptr_t)block);
    desc[2].flags |= VIRTQ_DESC_F_NEXT;
    desc[2].next = 1;
    int status = virtio_blk_submit();
    puts("malformed: descriptor loop, status byte ");
    put_dec(status); /* still 0xff: the device never wrote it */
    puts(", device status ");
    put_hex(R(MMIO_STATUS));
    puts(R(MMIO_STATUS) & STATUS_DEVICE_NEEDS_RESET ? " (needs reset)\n" : "\n");

    /* A reset and a fresh start (3.1.1) make the device usable again. */
    for (int i = 0; i < QUEUE_SIZE; i++)
        avail.ring[i] = 0;
    avail.idx = 0;
    used.idx = 0;
    if (!virtio_blk_init()) {
        puts("malformed: the device did not come back after a reset\n");
        return;
    }
    status = virtio_blk_rw(VIRTIO_BLK_T_IN, 1);
    puts("malformed: after a reset, sector 1 read, status ");
    put_dec(status);
    puts(", checksum ");
    put_hex(checksum(block, sizeof block));
    puts("\n");
}
#endif

/* -- Boot ------------------------------------------------------------------------------ */

__asm__(".section .text.start\n"
        ".globl _start\n"
        "_start:\n"
        "    la sp, stack_top\n"
        "    call kmain\n"
        "1:  j 1b\n"
        ".text\n"
        ".align 2\n"
        "trap_entry:\n"
        "    addi sp, sp, -64\n"
        "    sw ra, 0(sp)\n sw t0, 4(sp)\n sw t1, 8(sp)\n sw t2, 12(sp)\n"
        "    sw a0, 16(sp)\n sw a1, 20(sp)\n sw a2, 24(sp)\n sw a3, 28(sp)\n"
        "    sw a4, 32(sp)\n sw a5, 36(sp)\n sw a6, 40(sp)\n sw a7, 44(sp)\n"
        "    sw t3, 48(sp)\n sw t4, 52(sp)\n sw t5, 56(sp)\n sw t6, 60(sp)\n"
        "    call trap_handler\n"
        "    lw ra, 0(sp)\n lw t0, 4(sp)\n lw t1, 8(sp)\n lw t2, 12(sp)\n"
        "    lw a0, 16(sp)\n lw a1, 20(sp)\n lw a2, 24(sp)\n lw a3, 28(sp)\n"
        "    lw a4, 32(sp)\n lw a5, 36(sp)\n lw a6, 40(sp)\n lw a7, 44(sp)\n"
        "    lw t3, 48(sp)\n lw t4, 52(sp)\n lw t5, 56(sp)\n lw t6, 60(sp)\n"
        "    addi sp, sp, 64\n"
        "    sret\n");

extern char trap_entry[];

void kmain(long hartid)
{
    puts("kernel: hello from S-mode on hart ");
    put_dec(hartid);
    puts("\n");
    dbcn_write("kernel: hello through SBI DBCN\n");

    struct sbiret version = sbi_call(EID_BASE, 0, 0, 0, 0);
    struct sbiret impl = sbi_call(EID_BASE, 1, 0, 0, 0);
    puts("sbi: spec version ");
    put_dec(version.value >> 24);
    puts(".");
    put_dec(version.value & 0xffffff);
    puts(", implementation ");
    put_hex(impl.value);
    puts("\nsbi: probe TIME ");
    put_dec(sbi_call(EID_BASE, 3, EID_TIME, 0, 0).value);
    puts(", probe 0x12345678 ");
    put_dec(sbi_call(EID_BASE, 3, 0x12345678, 0, 0).value);
    puts(", unknown extension error ");
    put_dec(sbi_call(0x12345678, 0, 0, 0, 0).error);
    puts(", hart 0 status ");
    put_dec(sbi_call(EID_HSM, 2, 0, 0, 0).value);
    puts("\n");

    __asm__ volatile("csrw stvec, %0" ::"r"(trap_entry));
    __asm__ volatile("csrs sie, %0" ::"r"(SIE_STIE));
    set_timer(rdtime() + TIMER_INTERVAL);
    /* Test and sleep with interrupts off, or the last tick could come between the test
       and the WFI and the kernel would sleep for ever; WFI wakes up for a pending
       interrupt even while sstatus.SIE is 0, and it is taken once SIE is set again. */
    for (;;) {
        __asm__ volatile("csrc sstatus, %0" ::"r"(SSTATUS_SIE));
        if (ticks >= 3)
            break;
        __asm__ volatile("wfi");
        __asm__ volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE));
    }
    puts("kernel: 3 timer interrupts\n");

    /* The same for the UART: interrupts on, then sleep until the keys have come. */
    uart_interrupts_on();
    puts("uart: type 2 keys\n");
    for (;;) {
        __asm__ volatile("csrc sstatus, %0" ::"r"(SSTATUS_SIE));
        if (keys >= KEYS_EXPECTED)
            break;
        __asm__ volatile("wfi");
        __asm__ volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE));
    }
    puts("kernel: 2 keys through UART interrupts\n");

    disk_test();
#ifdef MALFORMED
    if (R(MMIO_MAGIC) == VIRTIO_MAGIC && R(MMIO_DEVICE_ID) == 2)
        malformed_disk_test();
#endif

    puts("kernel: shutting down\n");
    sbi_call(EID_SRST, 0, 0, 0, 0);
}
