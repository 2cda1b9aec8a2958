/*
 * io: write N blocks to the disk, read them back and check them.
 *
 * Measures block I/O through the virtio-blk driver (virtio 1.2, 5.2): each block is a
 * request on the virtqueue, a notification (an MMIO write, which every monitor must
 * trap) and a completion interrupt through the PLIC. Para-virtual I/O exists to make
 * exactly these cheap (Barham et al., "Xen and the art of virtualization", 2003;
 * Russell, "virtio", 2008). A block is one 512-byte sector (BLK_SECTOR_SIZE), written
 * and read with the tinyos extension calls of abi.h, one call per block, from sector 0.
 * Block k holds bytes of the LCG x' = 1664525 x + 1013904223 started at k, so the
 * checksum (zlib's CRC-32 of all blocks) can be recomputed on the host.
 *
 * Prints: io: n=<N> blocks written and read back, crc32 0x<8 hex digits>
 */
#include "ulib.h"

static uint8_t block[BLK_SECTOR_SIZE], readback[BLK_SECTOR_SIZE];

static void fill(unsigned k)
{
    uint32_t x = k;
    for (unsigned i = 0; i < BLK_SECTOR_SIZE; i++) {
        x = x * 1664525u + 1013904223u;
        block[i] = (uint8_t)(x >> 24);
    }
}

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 64, 1u << 20);
    int capacity = blk_capacity();
    if (capacity < 0) {
        printf("io: no disk: blk_capacity returned %s\n", errno_name(capacity));
        return 1;
    }
    if ((unsigned)capacity < n) {
        printf("io: the disk has %d sectors, fewer than n=%u\n", capacity, n);
        return 1;
    }
    for (unsigned k = 0; k < n; k++) {
        fill(k);
        int result = blk_write(k, block, 1);
        if (result < 0) {
            printf("io: writing block %u failed: %s\n", k, errno_name(result));
            return 1;
        }
    }
    uint32_t crc = 0;
    for (unsigned k = 0; k < n; k++) {
        int result = blk_read(k, readback, 1);
        if (result < 0) {
            printf("io: reading block %u failed: %s\n", k, errno_name(result));
            return 1;
        }
        fill(k);
        if (memcmp(block, readback, BLK_SECTOR_SIZE) != 0) {
            printf("io: block %u read back differs from what was written\n", k);
            return 1;
        }
        crc = crc32_update(crc, readback, BLK_SECTOR_SIZE);
    }
    printf("io: n=%u blocks written and read back, crc32 0x%08x\n", n, crc);
    return 0;
}
