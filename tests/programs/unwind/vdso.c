/* Threads spinning in clock_gettime (the vDSO) when main crashes. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>
static pthread_barrier_t ready;
static void *spin(void *a) {
    (void)a;
    struct timespec ts;
    pthread_barrier_wait(&ready);
    for (;;) clock_gettime(CLOCK_MONOTONIC, &ts);
    return NULL;
}
volatile int *nowhere;
__attribute__((noinline)) void crash_main(volatile int *p) { *p = 3; }
int main(void) {
    pthread_t t;
    pthread_barrier_init(&ready, NULL, 5);
    for (int i = 0; i < 4; i++) pthread_create(&t, NULL, spin, NULL);
    pthread_barrier_wait(&ready);
    usleep(50000);
    crash_main(nowhere);
    return 0;
}
