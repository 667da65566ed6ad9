/* syscalls N: N getppid() system calls (raw syscall(2), nothing cached by libc), then print the
 * loop's own wall time and CPU time in nanoseconds (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID).
 * A tracer without syscall tracing never stops it. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    long sum = 0;
    long long start = now_ns(CLOCK_MONOTONIC), cpu_start = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < n; i++)
        sum += syscall(SYS_getppid);
    long long end = now_ns(CLOCK_MONOTONIC), cpu_end = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    printf("%lld %lld %d\n", end - start, cpu_end - cpu_start, sum != 0);
    return 0;
}
