/*
 * Virtual memory: Sv32 page tables (RISC-V privileged spec 1.12, 4.3).
 *
 * Sv32 translates a 32-bit virtual address through two levels: the root table's entry
 * vpn[1] (bits 31:22) points at a level-0 table or is itself a 4 MiB megapage; the
 * level-0 entry vpn[0] (bits 21:12) maps one 4 KiB page (4.3.2).
 *
 * The kernel mapping, present in every address space and without the U bit, so user
 * mode cannot touch it (4.3.1):
 *   - RAM, identity-mapped with 4 MiB megapages: kernel virtual = physical, so the
 *     kernel reaches every physical page, including user pages, at its own address;
 *   - the device pages the kernel drives: the UART, virtio-mmio slot 0, and the PLIC
 *     pages of context 1, identity-mapped through two shared level-0 tables.
 * Every process has its own root table: a copy of the kernel's root entries plus its
 * own level-0 tables for user addresses below 0x8000_0000.
 *
 * A user address space has the program's segments (loaded by exec.c), a heap from
 * heap_start to brk and a stack below USER_STACK_TOP. Heap and stack pages are
 * demand-zero: nothing is mapped until the first touch raises a page fault, and
 * as_fault maps a zeroed page there. A fault anywhere else is the program's bug.
 *
 * The kernel never dereferences a user pointer: copyin and copyout walk the process's
 * page table in software and copy through the identity mapping, so a bad pointer is
 * an -EFAULT, not a kernel trap.
 */
#include "arch.h"
#include "kernel.h"

/* PTE bits (4.3.1, figure 4.18). tinyos sets A and D itself, so no hart needs to
   update them (4.3.1 lets a hart fault instead). */
#define PTE_V (1u << 0)
#define PTE_R (1u << 1)
#define PTE_W (1u << 2)
#define PTE_X (1u << 3)
#define PTE_U (1u << 4)
#define PTE_G (1u << 5)         /* global: in every address space (the kernel mapping) */
#define PTE_A (1u << 6)
#define PTE_D (1u << 7)
#define PTE_FLAGS 0x3ffu

#define VPN1(va) ((uint32_t)(va) >> 22)
#define VPN0(va) (((uint32_t)(va) >> 12) & 0x3ff)
#define PTE_ADDRESS(pte) (((pte) >> 10) << 12)  /* the physical address a PTE points at */
#define PTE_FOR(pa) (((uint32_t)(pa) >> 12) << 10)
#define MEGAPAGE_SIZE (4u << 20)

static uint32_t *kernel_root;

/* The device pages the kernel drives, mapped in every address space. */
static const uint32_t device_pages[] = {
    PAGE_ROUND_DOWN(PLIC_PRIORITY(0)),
    PAGE_ROUND_DOWN(PLIC_ENABLE(PLIC_S_CONTEXT)),
    PAGE_ROUND_DOWN(PLIC_THRESHOLD(PLIC_S_CONTEXT)),  /* threshold and claim/complete */
    UART0_BASE,
    VIRTIO0_BASE,
};

/* The level-0 entry for va under root, allocating the level-0 table when create is
   set. NULL when there is no table (or no page to make one). */
static uint32_t *walk(uint32_t *root, uint32_t va, int create)
{
    uint32_t *entry = &root[VPN1(va)];
    if (!(*entry & PTE_V)) {
        if (!create)
            return NULL;
        uint32_t *table = kzalloc();
        if (!table)
            return NULL;
        *entry = PTE_FOR(table) | PTE_V;    /* R = W = X = 0: a pointer to the next level */
    }
    uint32_t *table = (uint32_t *)PTE_ADDRESS(*entry);
    return &table[VPN0(va)];
}

void vm_init(uint32_t ram_end)
{
    kernel_root = kzalloc();
    if (!kernel_root)
        panic("no page for the kernel page table");
    for (uint32_t pa = RAM_BASE; pa < ram_end; pa += MEGAPAGE_SIZE)
        kernel_root[VPN1(pa)] = PTE_FOR(pa) | PTE_V | PTE_R | PTE_W | PTE_X | PTE_G | PTE_A | PTE_D;
    for (uint32_t i = 0; i < ARRAY_SIZE(device_pages); i++) {
        uint32_t *pte = walk(kernel_root, device_pages[i], 1);
        if (!pte)
            panic("no page for the device page tables");
        *pte = PTE_FOR(device_pages[i]) | PTE_V | PTE_R | PTE_W | PTE_G | PTE_A | PTE_D;
    }
    arch_set_pagetable(kernel_root);
}

static int is_user_address(uint32_t va)
{
    return (va >= USER_BASE && va < USER_HEAP_LIMIT) ||
           (va >= USER_STACK_BOTTOM && va < USER_STACK_TOP);
}

/* The root entries that can point at a user level-0 table, [first, last]: the program
   and its heap, then the stack. No kernel mapping shares them. */
static const struct {
    uint32_t first, last;
} user_roots[] = {
    {VPN1(USER_BASE), VPN1(USER_HEAP_LIMIT - 1)},
    {VPN1(USER_STACK_BOTTOM), VPN1(USER_STACK_TOP - 1)},
};

/* The user level-0 table at root entry i, or NULL. */
static uint32_t *user_table(const uint32_t *root, uint32_t i)
{
    return (root[i] & PTE_V) ? (uint32_t *)PTE_ADDRESS(root[i]) : NULL;
}

/* The next mapped user page at or after *va: its level-0 entry, with *va set to its
   address; NULL when there is none. User pages lie in the program and its heap, below
   the break, and in the stack, so only those addresses are looked at. */
static uint32_t *next_user_page(const struct addrspace *as, uint32_t *va)
{
    uint32_t heap_end = PAGE_ROUND_UP(as->brk);
    uint32_t a = *va < USER_BASE ? USER_BASE : *va;
    for (;;) {
        if (a >= heap_end && a < USER_STACK_BOTTOM)
            a = USER_STACK_BOTTOM;
        if (a >= USER_STACK_TOP)
            return NULL;
        uint32_t *table = user_table(as->root, VPN1(a));
        if (!table) {
            a = (VPN1(a) + 1) << 22;    /* no table: nothing in this 4 MiB */
        } else if (table[VPN0(a)] & PTE_V) {
            *va = a;
            return &table[VPN0(a)];
        } else {
            a += PAGE_SIZE;
        }
    }
}

int as_create(struct addrspace *as)
{
    as->root = kalloc();
    if (!as->root)
        return -ENOMEM;
    memcpy(as->root, kernel_root, PAGE_SIZE);
    as->heap_start = as->brk = 0;
    return 0;
}

/* The root table satp holds, while every translation a hart may have cached from it
   is still right; NULL when that is not known. */
static uint32_t *active_root;

/* Free every user page and level-0 table; the root, with the kernel mapping, stays. */
void as_free_user(struct addrspace *as)
{
    uint32_t *pte;
    if (as->root == active_root)
        active_root = NULL;     /* the hart may cache translations to the freed pages */
    for (uint32_t va = 0; (pte = next_user_page(as, &va)); va += PAGE_SIZE)
        kfree((void *)PTE_ADDRESS(*pte));
    for (uint32_t r = 0; r < ARRAY_SIZE(user_roots); r++) {
        for (uint32_t i = user_roots[r].first; i <= user_roots[r].last; i++) {
            uint32_t *table = user_table(as->root, i);
            if (table) {
                kfree(table);
                as->root[i] = 0;
            }
        }
    }
}

void as_destroy(struct addrspace *as)
{
    as_free_user(as);
    kfree(as->root);
    as->root = NULL;
}

/* fork's copy: every user page copied (no copy-on-write), same permissions. On
   -ENOMEM the caller destroys dst, with whatever was copied so far. */
int as_copy(struct addrspace *dst, const struct addrspace *src)
{
    const uint32_t *from;
    dst->heap_start = src->heap_start;
    dst->brk = src->brk;
    for (uint32_t va = 0; (from = next_user_page(src, &va)); va += PAGE_SIZE) {
        uint32_t *to = walk(dst->root, va, 1);
        void *page = to ? kalloc() : NULL;
        if (!page)
            return -ENOMEM;
        memcpy(page, (void *)PTE_ADDRESS(*from), PAGE_SIZE);
        *to = PTE_FOR(page) | (*from & PTE_FLAGS);
    }
    return 0;
}

/* Map a zeroed user page at va for the program loader. A page two segments share
   gets the permissions of both. */
int as_map_zero_page(struct addrspace *as, uint32_t va, int executable, int writable)
{
    uint32_t flags = PTE_V | PTE_U | PTE_R | PTE_A | PTE_D;
    if (executable)
        flags |= PTE_X;
    if (writable)
        flags |= PTE_W;
    uint32_t *pte = walk(as->root, va, 1);
    if (!pte)
        return -ENOMEM;
    if (*pte & PTE_V) {
        *pte |= flags;
        return 0;
    }
    void *page = kzalloc();
    if (!page)
        return -ENOMEM;
    *pte = PTE_FOR(page) | flags;
    return 0;
}

static int is_demand_zero(const struct addrspace *as, uint32_t va)
{
    return (va >= as->heap_start && va < as->brk) ||
           (va >= USER_STACK_BOTTOM && va < USER_STACK_TOP);
}

/* A user page fault at va. In the heap or the stack, and not mapped yet: map a zeroed
   page and let the access run again (0). Anywhere else, or on a page that is mapped
   but does not allow the access: -EFAULT. -ENOMEM when RAM is exhausted. */
int as_fault(struct addrspace *as, uint32_t va)
{
    if (!is_demand_zero(as, va))
        return -EFAULT;
    uint32_t *pte = walk(as->root, va, 1);
    if (!pte)
        return -ENOMEM;
    if (*pte & PTE_V)
        return -EFAULT;
    void *page = kzalloc();
    if (!page)
        return -ENOMEM;
    *pte = PTE_FOR(page) | PTE_V | PTE_U | PTE_R | PTE_W | PTE_A | PTE_D;
    arch_flush_page(va);
    return 0;
}

/* brk (Linux mm/mmap.c semantics): a new end inside [heap_start, USER_HEAP_LIMIT] is
   taken, anything else is refused; either way the result is the break now in force.
   Growing maps nothing (the pages come on first touch); shrinking frees the pages
   that are no longer in the heap. */
uint32_t as_set_brk(struct addrspace *as, uint32_t new_brk)
{
    if (new_brk < as->heap_start || new_brk > USER_HEAP_LIMIT)
        return as->brk;
    for (uint32_t va = PAGE_ROUND_UP(new_brk); va < PAGE_ROUND_UP(as->brk); va += PAGE_SIZE) {
        uint32_t *pte = walk(as->root, va, 0);
        if (pte && (*pte & PTE_V)) {
            kfree((void *)PTE_ADDRESS(*pte));
            *pte = 0;
            arch_flush_page(va);
        }
    }
    as->brk = new_brk;
    return new_brk;
}

/* Switch to the address space of the process about to run. When it is the one already
   active (the scheduler picked the process that was running), its translations are
   still right, and the satp write and the fence are skipped, as Linux's switch_mm
   does for prev == next: both are privileged, so under trap-and-emulate each costs
   an exit. A root freed and reused by another process is not mistaken for the
   active one: as_free_user forgets it. */
void as_activate(struct addrspace *as)
{
    if (as->root == active_root)
        return;
    arch_set_pagetable(as->root);
    active_root = as->root;
}

/* The kernel address of user address va, if the page is there (or can be faulted in)
   and has every PTE bit in need; NULL otherwise. */
static uint8_t *user_to_kernel(struct addrspace *as, uint32_t va, uint32_t need)
{
    if (!is_user_address(va))
        return NULL;
    uint32_t *pte = walk(as->root, va, 0);
    if (!pte || !(*pte & PTE_V)) {
        if (as_fault(as, va) != 0)
            return NULL;
        pte = walk(as->root, va, 0);
    }
    if ((*pte & need) != need)
        return NULL;
    return (uint8_t *)(PTE_ADDRESS(*pte) | (va & (PAGE_SIZE - 1)));
}

/* Copy between the kernel and user addresses [va, va + size), a page at a time. */
static int copy_user(struct addrspace *as, uint32_t va, void *kernel, uint32_t size,
                     int to_user, uint32_t need)
{
    uint8_t *k = kernel;
    while (size) {
        uint8_t *u = user_to_kernel(as, va, need);
        if (!u)
            return -EFAULT;
        uint32_t chunk = PAGE_SIZE - (va & (PAGE_SIZE - 1));
        if (chunk > size)
            chunk = size;
        if (to_user)
            memcpy(u, k, chunk);
        else
            memcpy(k, u, chunk);
        va += chunk;
        k += chunk;
        size -= chunk;
    }
    return 0;
}

int copyin(struct addrspace *as, void *dst, uint32_t src_va, uint32_t size)
{
    return copy_user(as, src_va, dst, size, 0, PTE_U | PTE_R);
}

int copyout(struct addrspace *as, uint32_t dst_va, const void *src, uint32_t size)
{
    return copy_user(as, dst_va, (void *)src, size, 1, PTE_U | PTE_W);
}

/* The loader's copy: into pages it just mapped, writable by the program or not. */
int as_load(struct addrspace *as, uint32_t dst_va, const void *src, uint32_t size)
{
    return copy_user(as, dst_va, (void *)src, size, 1, PTE_U);
}

/* A NUL-terminated string from user space into dst[size]: its length, -EFAULT, or
   -E2BIG when it does not fit. */
int copyin_string(struct addrspace *as, char *dst, uint32_t src_va, uint32_t size)
{
    for (uint32_t n = 0; n < size; n++) {
        const uint8_t *u = user_to_kernel(as, src_va + n, PTE_U | PTE_R);
        if (!u)
            return -EFAULT;
        dst[n] = (char)*u;
        if (!*u)
            return (int)n;
    }
    return -E2BIG;
}
