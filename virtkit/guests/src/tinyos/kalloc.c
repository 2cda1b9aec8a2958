/*
 * The physical page allocator: every 4 KiB page of RAM from the end of the kernel
 * image to the end of the RAM tinyos uses (mem=) sits on a free list, linked through
 * the first word of each free page, as in xv6's kalloc.c. Pages are not zeroed until
 * someone asks (kzalloc), so boot costs one store per page.
 */
#include "kernel.h"

struct free_page {
    struct free_page *next;
};

static struct free_page *free_list;

void kalloc_init(uint32_t start, uint32_t end)
{
    for (uint32_t page = PAGE_ROUND_UP(start); page + PAGE_SIZE <= end; page += PAGE_SIZE)
        kfree((void *)page);
}

void kfree(void *page)
{
    struct free_page *p = page;
    p->next = free_list;
    free_list = p;
}

void *kalloc(void)
{
    struct free_page *p = free_list;
    if (p)
        free_list = p->next;
    return p;
}

void *kzalloc(void)
{
    void *page = kalloc();
    if (page)
        memset(page, 0, PAGE_SIZE);
    return page;
}
