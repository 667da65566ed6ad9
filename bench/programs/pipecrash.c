/* pipecrash MODE MIB THREADS: fill MIB MiB of heap (MODE "random": xorshift64 bytes,
 * "constant": 0x5a), park THREADS-1 idle threads, print "ready", then SIGSEGV as soon as a
 * byte arrives on stdin (so the parent can time the crash itself, not the fill). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t ready;

static void *parked(void *arg) {
    (void)arg;
    pthread_barrier_wait(&ready);
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int random_fill = strcmp(argv[1], "random") == 0;
    size_t size = strtoul(argv[2], NULL, 10) << 20;
    int threads = atoi(argv[3]);
    uint64_t *p = malloc(size ? size : 8);
    if (!p) return 2;
    if (random_fill) {
        uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        for (size_t i = 0; i < size / 8; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            p[i] = x;
        }
    } else {
        memset(p, 0x5a, size);
    }
    pthread_barrier_init(&ready, NULL, (unsigned)threads);
    pthread_t t;
    for (int i = 1; i < threads; i++)
        if (pthread_create(&t, NULL, parked, NULL)) return 3;
    pthread_barrier_wait(&ready);
    fputs("ready\n", stdout);
    fflush(stdout);
    char c;
    if (read(0, &c, 1) != 1) return 4;
    *(volatile int *)16 = 1;
    return 0;
}
