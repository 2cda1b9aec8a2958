/*
 * compute: CPU-bound integer work in user mode, with no system call until the end.
 *
 * Measures the cost of running ordinary code under the kernel and a virtual machine
 * monitor: with nothing to trap, a good monitor costs (almost) nothing here, so this is
 * the baseline every other workload is compared with (Adams and Agesen 2006 call such
 * workloads "compute-bound"; their SPECint runs). The four kernels and their constants
 * are those of virtkit/bench/compute.s, in C: a sieve of Eratosthenes, a bitwise CRC-32,
 * a 16 x 16 matrix product and an insertion sort, over inputs from the LCG
 * x' = 1664525 x + 1013904223 (Numerical Recipes, 2nd ed., 7.1), each result folded into
 * an FNV-1 checksum. n repetitions leave the checksum that
 * virtkit.bench.measure.reference_checksum(n) computes in Python. About 0.5 million
 * instructions a repetition: the default n = 64 runs some 30 million.
 *
 * Prints: compute: n=<N> checksum=0x<8 hex digits>
 */
#include "ulib.h"

#define SIEVE_SIZE 16384
#define CRC_BYTES 1024
#define MAT_N 16
#define SORT_N 256

#define LCG_A 1664525u
#define LCG_C 1013904223u
#define CRC_SEED 0x12345678u
#define MAT_SEED 0x9E3779B9u
#define SORT_SEED 0x2545F491u
#define SORT_RANGE 100000u

#define FNV_OFFSET_BASIS 2166136261u
#define FNV_PRIME 16777619u

static uint8_t sieve_flags[SIEVE_SIZE];
static uint8_t crc_buffer[CRC_BYTES];
static int16_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N];
static int32_t mat_c[MAT_N][MAT_N];
static uint32_t sort_array[SORT_N];

static uint32_t lcg(uint32_t x) { return x * LCG_A + LCG_C; }

static uint32_t fnv1(uint32_t h, uint32_t value) { return (h ^ value) * FNV_PRIME; }

/* The number of primes below SIEVE_SIZE, and their sum. */
static void sieve(uint32_t *count, uint32_t *sum)
{
    memset(sieve_flags, 1, SIEVE_SIZE);
    sieve_flags[0] = sieve_flags[1] = 0;
    for (uint32_t i = 2; i * i < SIEVE_SIZE; i++) {
        if (sieve_flags[i])
            for (uint32_t multiple = i * i; multiple < SIEVE_SIZE; multiple += i)
                sieve_flags[multiple] = 0;
    }
    *count = *sum = 0;
    for (uint32_t i = 0; i < SIEVE_SIZE; i++) {
        if (sieve_flags[i]) {
            *count += 1;
            *sum += i;
        }
    }
}

/* CRC-32 of CRC_BYTES bytes, byte k being bits 31..24 of the k-th LCG value. */
static uint32_t crc32_kernel(void)
{
    uint32_t x = CRC_SEED;
    for (int k = 0; k < CRC_BYTES; k++) {
        x = lcg(x);
        crc_buffer[k] = (uint8_t)(x >> 24);
    }
    return crc32_update(0, crc_buffer, CRC_BYTES);
}

/* h' = 31 h + C[i][j] over C = A B in row order; A then B hold LCG values >> 20. */
static uint32_t matmul(void)
{
    uint32_t x = MAT_SEED;
    for (int i = 0; i < 2 * MAT_N * MAT_N; i++) {
        x = lcg(x);
        int16_t value = (int16_t)((int32_t)x >> 20);
        if (i < MAT_N * MAT_N)
            mat_a[i / MAT_N][i % MAT_N] = value;
        else
            mat_b[(i - MAT_N * MAT_N) / MAT_N][i % MAT_N] = value;
    }
    uint32_t h = 0;
    for (int i = 0; i < MAT_N; i++) {
        for (int j = 0; j < MAT_N; j++) {
            int32_t dot = 0;
            for (int k = 0; k < MAT_N; k++)
                dot += mat_a[i][k] * mat_b[k][j];
            mat_c[i][j] = dot;
            h = 31 * h + (uint32_t)dot;
        }
    }
    return h;
}

/* Insertion sort of (x >> 8) mod SORT_RANGE; then h' = 31 h + a[i], and 31 h + mean. */
static uint32_t sort(void)
{
    uint32_t x = SORT_SEED;
    for (int i = 0; i < SORT_N; i++) {
        x = lcg(x);
        sort_array[i] = (x >> 8) % SORT_RANGE;
    }
    for (int i = 1; i < SORT_N; i++) {
        uint32_t key = sort_array[i];
        int hole = i;
        while (hole > 0 && sort_array[hole - 1] > key) {
            sort_array[hole] = sort_array[hole - 1];
            hole--;
        }
        sort_array[hole] = key;
    }
    uint32_t h = 0, sum = 0;
    for (int i = 0; i < SORT_N; i++) {
        h = 31 * h + sort_array[i];
        sum += sort_array[i];
    }
    return 31 * h + sum / SORT_N;
}

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 64, 100000);
    uint32_t checksum = FNV_OFFSET_BASIS;
    for (unsigned round = 0; round < n; round++) {
        uint32_t count, sum;
        sieve(&count, &sum);
        checksum = fnv1(checksum, count);
        checksum = fnv1(checksum, sum);
        checksum = fnv1(checksum, crc32_kernel());
        checksum = fnv1(checksum, matmul());
        checksum = fnv1(checksum, sort());
    }
    printf("compute: n=%u checksum=0x%08x\n", n, checksum);
    return 0;
}
