/*
 * The virtio block device in virtio-mmio slot 0 (Virtual I/O Device Specification
 * 1.2: 4.2.2 "MMIO Device Register Layout", version 2, the modern interface; 3.1
 * "Device Initialization"; 2.7 "Split Virtqueues"; 5.2 "Block Device").
 *
 * One virtqueue of QUEUE_SIZE descriptors, one request in flight at a time, three
 * descriptors per request: the header the device reads, the data, and the status
 * byte the device writes (5.2.6). Data moves through a one-page bounce buffer in the
 * kernel, copied from or to the user's buffer with copyin/copyout, so the device only
 * ever sees kernel memory, whose virtual addresses are its physical ones (vm.c).
 *
 * Sleep, not poll: after notifying the device, the process sleeps until the
 * used-buffer interrupt (PLIC source 1) wakes it, and the hart runs other processes,
 * or idles in WFI, meanwhile. On QEMU the disk completes asynchronously, and the point
 * of the device is that the CPU need not wait for it; the interrupt path is also what
 * the virtualization lessons follow (notify -> VM exit -> completion -> injected
 * interrupt). virtkit's device completes during the notify itself, so there the used
 * ring has advanced before the process would sleep, and it does not.
 */
#include "arch.h"
#include "kernel.h"
#include "proc.h"

/* 4.2.2 registers (offsets) */
#define MAGIC_VALUE         0x000
#define VERSION             0x004
#define DEVICE_ID           0x008
#define DRIVER_FEATURES     0x020
#define DRIVER_FEATURES_SEL 0x024
#define QUEUE_SEL           0x030
#define QUEUE_NUM_MAX       0x034
#define QUEUE_NUM           0x038
#define QUEUE_READY         0x044
#define QUEUE_NOTIFY        0x050
#define INTERRUPT_STATUS    0x060
#define INTERRUPT_ACK       0x064
#define STATUS              0x070
#define QUEUE_DESC_LOW      0x080
#define QUEUE_DESC_HIGH     0x084
#define QUEUE_DRIVER_LOW    0x090
#define QUEUE_DRIVER_HIGH   0x094
#define QUEUE_DEVICE_LOW    0x0a0
#define QUEUE_DEVICE_HIGH   0x0a4
#define CONFIG_CAPACITY_LOW 0x100   /* 5.2.4: capacity in 512-byte sectors, 64 bits */
#define CONFIG_CAPACITY_HIGH 0x104

#define VIRTIO_MAGIC 0x74726976     /* "virt" */
#define VIRTIO_ID_BLOCK 2

/* 2.1 device status bits */
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_DEVICE_NEEDS_RESET 64
#define STATUS_FAILED 128

#define VIRTIO_F_VERSION_1_HIGH 1   /* feature bit 32: bit 0 of the high word (6) */
#define INTERRUPT_CONFIG_CHANGE 2   /* 4.2.2 InterruptStatus */

/* 2.7.5 descriptors, 2.7.6 available ring, 2.7.8 used ring */
#define QUEUE_SIZE 8
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2        /* the device writes this buffer */

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

/* 5.2.6 requests */
#define VIRTIO_BLK_T_IN 0           /* read */
#define VIRTIO_BLK_T_OUT 1          /* write */
#define VIRTIO_BLK_S_OK 0
#define STATUS_PENDING 0xff         /* not a status the device writes */

struct virtio_blk_req {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

#define SECTORS_PER_BOUNCE (PAGE_SIZE / BLK_SECTOR_SIZE)

static struct virtq_desc desc[QUEUE_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static volatile struct virtq_used used __attribute__((aligned(4)));
static struct virtio_blk_req header;
static volatile uint8_t request_status;
static uint8_t bounce[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static struct {
    uint32_t capacity;      /* sectors; 0: no disk */
    int busy;               /* a process is using the queue and the bounce buffer */
    int broken;             /* the device asked for a reset (2.1.2): no more requests */
    uint16_t used_seen;     /* used.idx after the last completed request */
} disk;

static uint32_t read_register(uint32_t offset)
{
    return arch_read32(VIRTIO0_BASE + offset);
}

static void write_register(uint32_t offset, uint32_t value)
{
    arch_write32(VIRTIO0_BASE + offset, value);
}

/* 3.1.1 driver initialization, with VIRTIO_F_VERSION_1 as the only feature. An empty
   slot (device ID 0, 4.2.3.1.1): no disk. A device that refuses the features or has
   too small a queue: no disk either, and the device is told so (FAILED). */
void virtio_blk_init(void)
{
    if (read_register(MAGIC_VALUE) != VIRTIO_MAGIC || read_register(VERSION) != 2 ||
        read_register(DEVICE_ID) != VIRTIO_ID_BLOCK)
        return;
    write_register(STATUS, 0);      /* reset */
    uint32_t status = STATUS_ACKNOWLEDGE;
    write_register(STATUS, status);
    status |= STATUS_DRIVER;
    write_register(STATUS, status);
    write_register(DRIVER_FEATURES_SEL, 0);
    write_register(DRIVER_FEATURES, 0);
    write_register(DRIVER_FEATURES_SEL, 1);
    write_register(DRIVER_FEATURES, VIRTIO_F_VERSION_1_HIGH);
    status |= STATUS_FEATURES_OK;
    write_register(STATUS, status);
    write_register(QUEUE_SEL, 0);
    if (!(read_register(STATUS) & STATUS_FEATURES_OK) ||
        read_register(QUEUE_NUM_MAX) < QUEUE_SIZE) {
        write_register(STATUS, status | STATUS_FAILED);
        return;
    }
    write_register(QUEUE_NUM, QUEUE_SIZE);
    write_register(QUEUE_DESC_LOW, (uint32_t)desc);
    write_register(QUEUE_DESC_HIGH, 0);
    write_register(QUEUE_DRIVER_LOW, (uint32_t)&avail);
    write_register(QUEUE_DRIVER_HIGH, 0);
    write_register(QUEUE_DEVICE_LOW, (uint32_t)&used);
    write_register(QUEUE_DEVICE_HIGH, 0);
    write_register(QUEUE_READY, 1);
    write_register(STATUS, status | STATUS_DRIVER_OK);

    uint32_t high = read_register(CONFIG_CAPACITY_HIGH);
    uint32_t low = read_register(CONFIG_CAPACITY_LOW);
    /* blk_capacity returns an int: a disk of 1 TiB or more shows its first 1 TiB. */
    disk.capacity = high || low > 0x7fffffff ? 0x7fffffff : low;
}

uint32_t virtio_blk_capacity(void)
{
    return disk.capacity;
}

/* One request of count sectors between the bounce buffer and the disk: offer the
   three-descriptor chain in the available ring (2.7.13), notify the device, sleep
   until it is in the used ring (2.7.14). */
static int request(uint32_t type, uint32_t sector, uint32_t count)
{
    header.type = type;
    header.reserved = 0;
    header.sector = sector;
    request_status = STATUS_PENDING;
    desc[0] = (struct virtq_desc){(uint32_t)&header, sizeof header, VIRTQ_DESC_F_NEXT, 1};
    uint16_t data_flags = VIRTQ_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0);
    desc[1] = (struct virtq_desc){(uint32_t)bounce, count * BLK_SECTOR_SIZE, data_flags, 2};
    desc[2] = (struct virtq_desc){(uint32_t)&request_status, 1, VIRTQ_DESC_F_WRITE, 0};
    avail.ring[avail.idx % QUEUE_SIZE] = 0;
    __sync_synchronize();   /* the ring entry before the index that publishes it (2.7.13) */
    avail.idx++;
    __sync_synchronize();   /* the index before the notification */
    write_register(QUEUE_NOTIFY, 0);

    /* With one request in flight, the used element that appears is this chain's. */
    while (used.idx == disk.used_seen && !disk.broken)
        sleep(&header);
    disk.used_seen = used.idx;
    return request_status == VIRTIO_BLK_S_OK ? 0 : -EIO;
}

/* Move count sectors from sector on through the bounce buffer, a page at a time. */
static int transfer(int write, uint32_t sector, uint32_t buf_va, uint32_t count)
{
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < SECTORS_PER_BOUNCE ? count - done : SECTORS_PER_BOUNCE;
        uint32_t va = buf_va + done * BLK_SECTOR_SIZE;
        if (write && copyin(&current->as, bounce, va, n * BLK_SECTOR_SIZE))
            return -EFAULT;
        int error = request(write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector + done, n);
        if (error)
            return error;
        if (!write && copyout(&current->as, va, bounce, n * BLK_SECTOR_SIZE))
            return -EFAULT;
        done += n;
    }
    return (int)count;
}

/* The blk_read and blk_write system calls. One process at a time owns the queue and
   the bounce buffer, from its first copy to its last. Returns count. */
int virtio_blk_rw(int write, uint32_t sector, uint32_t buf_va, uint32_t count)
{
    if (!disk.capacity)
        return -ENODEV;
    if (sector > disk.capacity || count > disk.capacity - sector)
        return -EINVAL;
    while (disk.busy)
        sleep(&disk);
    if (disk.broken)
        return -EIO;
    disk.busy = 1;
    int result = transfer(write, sector, buf_va, count);
    disk.busy = 0;
    wakeup(&disk);
    return result;
}

/* The device's interrupt: acknowledge it (4.2.2 InterruptACK) and wake the process
   waiting for its request. */
void virtio_blk_interrupt(void)
{
    uint32_t reasons = read_register(INTERRUPT_STATUS);
    write_register(INTERRUPT_ACK, reasons);
    if ((reasons & INTERRUPT_CONFIG_CHANGE) && (read_register(STATUS) & STATUS_DEVICE_NEEDS_RESET))
        disk.broken = 1;
    wakeup(&header);
}
