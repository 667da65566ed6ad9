/* bigcrash MIB THREADS: touch MIB MiB of heap, park THREADS-1 extra threads, then SIGSEGV. */
#include <pthread.h>
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
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    char *p = malloc(mib << 20);
    if (!p) return 2;
    memset(p, 0x5a, mib << 20);
    pthread_barrier_init(&ready, NULL, (unsigned)threads);
    pthread_t t;
    for (int i = 1; i < threads; i++) pthread_create(&t, NULL, parked, NULL);
    pthread_barrier_wait(&ready);
    usleep(20000);
    *(volatile int *)16 = 1;
    return 0;
}
