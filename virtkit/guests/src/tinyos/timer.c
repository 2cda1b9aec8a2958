/*
 * Time: the round-robin time slice and nanosleep, on the one timer SBI gives a kernel
 * (SBI spec 2.0, chapter 6: sbi_set_timer programs the next timer interrupt, which
 * also clears the pending one).
 *
 * The timer is armed for the earliest of two deadlines: the end of the running
 * process's time slice, and the earliest nanosleep wake-up. Nothing else is ticking:
 * with no process running and nobody asleep on time, the timer is off, and the
 * scheduler's WFI waits for a device (on virtkit, a Machine whose guest waits only
 * for console input then says "idle" instead of running for ever).
 *
 * An SBI call is costly (an exit to the firmware), so the timer is re-armed lazily: a
 * new slice only moves the deadline when it is earlier than the one already armed. A
 * stale, earlier deadline costs one early interrupt, which re-arms the right one.
 */
#include "arch.h"
#include "kernel.h"
#include "proc.h"

#define NSEC_PER_TICK (1000000000u / TIMEBASE_HZ)

static uint64_t quantum;                    /* in timer ticks */
static uint64_t slice_end;                  /* of the running process */
static uint64_t armed = ARCH_TIME_NEVER;    /* the deadline the SBI timer holds */
static int next_slice_armed;                /* it holds the end of the slice starting next */

void timer_init(unsigned quantum_ms)
{
    quantum = (uint64_t)quantum_ms * (TIMEBASE_HZ / 1000);
}

static void arm(uint64_t deadline)
{
    armed = deadline;
    arch_set_timer(deadline);
}

static void arm_if_earlier(uint64_t deadline)
{
    if (deadline < armed)
        arm(deadline);
}

void timer_start_slice(void)
{
    if (next_slice_armed) {
        next_slice_armed = 0;   /* timer_interrupt began this slice and armed its end */
        return;
    }
    slice_end = arch_read_time() + quantum;
    arm_if_earlier(slice_end);
}

/* The timer interrupt: wake the sleepers whose time has come and arm the next
   deadline. Returns 1 when the running process's slice is over; preempting it is then
   the trap handler's business (it yields), and the scheduler starts the next slice at
   once. That slice begins here: its end is armed with the same SBI call that clears
   this interrupt, so starting it needs no second call (each is an exit to the
   firmware, and under a hypervisor an exit to the monitor). */
int timer_interrupt(void)
{
    uint64_t now = arch_read_time();
    uint64_t next = proc_wake_sleepers(now);
    int over = current && now >= slice_end;
    if (over) {
        slice_end = now + quantum;
        next_slice_armed = 1;
    }
    if (current && slice_end < next)
        next = slice_end;
    arm(next);      /* always: this is also what clears the pending interrupt */
    return over;
}

/* nanosleep: sleep for at least the duration (rounded up to whole ticks). A negative
   or unnormalized duration is -EINVAL (nanosleep(2)). */
int timer_sleep(const struct timespec *duration)
{
    const long long max_seconds = 1000000000; /* about 32 years: as good as for ever */
    if (duration->tv_sec < 0 || duration->tv_nsec < 0 || duration->tv_nsec >= 1000000000)
        return -EINVAL;
    long long seconds = duration->tv_sec < max_seconds ? duration->tv_sec : max_seconds;
    uint64_t deadline = arch_read_time() + (uint64_t)seconds * TIMEBASE_HZ +
                        ((uint32_t)duration->tv_nsec + NSEC_PER_TICK - 1) / NSEC_PER_TICK;
    arm_if_earlier(deadline);
    while (arch_read_time() < deadline) {
        current->wake_time = deadline;
        sleep(&current->wake_time);
    }
    return 0;
}

/* The time since boot as a struct timespec (clock_gettime). */
void timer_now(struct timespec *now)
{
    uint32_t ticks;
    memset(now, 0, sizeof *now);
    now->tv_sec = (long long)udiv64(arch_read_time(), TIMEBASE_HZ, &ticks);
    now->tv_nsec = (long)(ticks * NSEC_PER_TICK);
}
