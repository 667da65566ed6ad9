/* 8 threads: main crashes while the 7 others block in different calls. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>
static pthread_barrier_t ready;
static int pipefd[2];
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static pthread_t sleeper_thread;
static void *in_pause(void *a) { (void)a; pthread_barrier_wait(&ready); for (;;) pause(); }
static void *in_nanosleep(void *a) { (void)a; pthread_barrier_wait(&ready); for (;;) { struct timespec t = {100, 0}; nanosleep(&t, NULL); } }
static void *in_read(void *a) { (void)a; char c; pthread_barrier_wait(&ready); for (;;) read(pipefd[0], &c, 1); }
static void *in_join(void *a) { (void)a; pthread_barrier_wait(&ready); pthread_join(sleeper_thread, NULL); return NULL; }
static void *in_mutex(void *a) { (void)a; pthread_barrier_wait(&ready); pthread_mutex_lock(&held); return NULL; }
static void *in_poll(void *a) { (void)a; struct pollfd p = {pipefd[0], POLLIN, 0}; pthread_barrier_wait(&ready); for (;;) poll(&p, 1, -1); }
static void *in_cond(void *a) { (void)a; pthread_barrier_wait(&ready); pthread_mutex_lock(&cm); for (;;) pthread_cond_wait(&cv, &cm); }
volatile int *nowhere;
__attribute__((noinline)) void crash_main(volatile int *p) { *p = 3; }
int main(void) {
    pipe(pipefd);
    sem_init(&sem, 0, 0);
    pthread_mutex_lock(&held);
    pthread_barrier_init(&ready, NULL, 8);
    pthread_t t;
    pthread_create(&sleeper_thread, NULL, in_nanosleep, NULL);
    void *(*fns[])(void *) = {in_pause, in_read, in_join, in_mutex, in_poll, in_cond};
    for (int i = 0; i < 6; i++) pthread_create(&t, NULL, fns[i], NULL);
    pthread_barrier_wait(&ready);
    usleep(100000);
    crash_main(nowhere);
    return 0;
}
