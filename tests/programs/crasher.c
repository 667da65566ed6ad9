/* A program that crashes in a chosen way, for tests against real kernel cores.
 *
 *   crasher segv            write to address 0x10 in main's callee crash_now()
 *   crasher threads N       N threads in all; thread N-1 crashes, the others wait in pause()
 *   crasher abort           abort() (SIGABRT raised with tgkill)
 *   crasher sigbus FILE     read a mapped page of FILE after truncating FILE to 0 bytes
 *   crasher stdin-segv      block on a read of stdin, then crash like segv
 *
 * Globals the tests read back from the core's memory (built with -no-pie, so the symbol
 * value is the run-time address): g_pattern (4096 bytes of (i * 7) & 0xff), g_fault_addr.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

unsigned char g_pattern[4096];
volatile uintptr_t g_fault_addr;
static pthread_barrier_t g_ready;

__attribute__((noinline)) void crash_now(void) {
    g_fault_addr = 0x10;
    *(volatile int *)g_fault_addr = 1;
}

static void *parked(void *arg) {
    (void)arg;
    pthread_barrier_wait(&g_ready);
    for (;;) pause();
    return NULL;
}

static void *crashing(void *arg) {
    (void)arg;
    pthread_barrier_wait(&g_ready);
    usleep(50000); /* let the parked threads reach pause() */
    crash_now();
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 0; i < 4096; i++) g_pattern[i] = (unsigned char)(i * 7);
    const char *mode = argc > 1 ? argv[1] : "segv";
    if (!strcmp(mode, "segv")) {
        crash_now();
    } else if (!strcmp(mode, "threads")) {
        int n = argc > 2 ? atoi(argv[2]) : 8;
        pthread_t t;
        pthread_barrier_init(&g_ready, NULL, (unsigned)n);
        for (int i = 1; i < n - 1; i++) pthread_create(&t, NULL, parked, NULL);
        pthread_create(&t, NULL, crashing, NULL);
        pthread_barrier_wait(&g_ready);
        for (;;) pause();
    } else if (!strcmp(mode, "abort")) {
        abort();
    } else if (!strcmp(mode, "sigbus")) {
        int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || ftruncate(fd, 4096) != 0) return 2;
        volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED || ftruncate(fd, 0) != 0) return 3;
        g_fault_addr = (uintptr_t)p;
        return p[0];
    } else if (!strcmp(mode, "stdin-segv")) {
        char c;
        if (read(0, &c, 1) < 0) return 4;
        crash_now();
    }
    return 1;
}
