/*
 * CRC-32 (IEEE 802.3), computed one bit at a time: the reflected polynomial 0xEDB88320,
 * the register starting at all ones and inverted at the end, so the value equals
 * Python's zlib.crc32 and the tests can check it on the host.
 */
#include "ulib.h"

uint32_t crc32_update(uint32_t crc, const void *data, size_t length)
{
    const uint8_t *bytes = data;
    crc = ~crc;
    for (size_t i = 0; i < length; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (CRC32_POLY & (0u - (crc & 1)));
    }
    return ~crc;
}
