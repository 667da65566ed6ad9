/* crashloop COUNT HEAP_MIB GAP_US CORE: a crash-looping program. Fills HEAP_MIB MiB of
 * anonymous memory with xorshift64 bytes (incompressible), then COUNT times forks a child
 * that inherits it, sets RLIMIT_CORE (CORE 1: unlimited, 0: zero, so a file pattern writes
 * nothing), stores CLOCK_MONOTONIC into shared memory and crashes (SIGSEGV, write to 0x10).
 * The parent waitpid()s each child, notes when it was reaped, sleeps GAP_US and goes on.
 * Prints one line per crash, "pid status crash_ns reaped_ns", then
 * "children utime_s stime_s" (getrusage(RUSAGE_CHILDREN): what the dying tasks spent,
 * the kernel writing their cores included). CLOCK_MONOTONIC is Python's time.monotonic(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *map(size_t size, int flags) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void fill(uint64_t *p, size_t words) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
}

static void crash(long long *stamp, int core) {
    struct rlimit rl = {core ? RLIM_INFINITY : 0, core ? RLIM_INFINITY : 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) _exit(3);
    *stamp = now_ns();
    int *volatile bad = (int *)0x10;  /* volatile pointer: no bounds warning */
    *bad = 1;
    _exit(4);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fputs("usage: crashloop COUNT HEAP_MIB GAP_US CORE\n", stderr);
        return 2;
    }
    int count = atoi(argv[1]);
    size_t heap = strtoul(argv[2], NULL, 10) << 20;
    long gap_us = atol(argv[3]);
    int core = atoi(argv[4]);
    if (count <= 0) return 2;
    if (heap) fill(map(heap, MAP_PRIVATE), heap / 8);
    long long *crashed = map((size_t)count * sizeof *crashed, MAP_SHARED);
    long long *reaped = calloc((size_t)count, sizeof *reaped);
    pid_t *pids = calloc((size_t)count, sizeof *pids);
    int *status = calloc((size_t)count, sizeof *status);
    if (!reaped || !pids || !status) return 2;
    struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) crash(&crashed[i], core);
        while (waitpid(pid, &status[i], 0) < 0) {}
        reaped[i] = now_ns();
        pids[i] = pid;
        if (gap_us > 0) nanosleep(&gap, NULL);
    }
    for (int i = 0; i < count; i++)
        printf("%d %d %lld %lld\n", (int)pids[i], status[i], crashed[i], reaped[i]);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("children %ld.%06ld %ld.%06ld\n", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
           (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    return 0;
}
