/* The demo's crash: a small "server" whose worker thread dereferences a NULL request
 * three calls deep while two other workers wait for work. Built with -g -O0 by the demo. */
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>

struct request { const char *path; int length; };

static pthread_barrier_t started;

__attribute__((noinline)) static int parse_request(const struct request *req) {
    return req->length * 2;          /* req is NULL: SIGSEGV here */
}

__attribute__((noinline)) static int handle_connection(const struct request *req) {
    return parse_request(req) + 1;
}

static void *idle_worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&started);
    for (;;) pause();
    return NULL;
}

static void *busy_worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&started);
    usleep(20000);
    return (void *)(long)handle_connection(NULL);
}

int main(void) {
    pthread_t t;
    pthread_barrier_init(&started, NULL, 4);
    pthread_create(&t, NULL, idle_worker, NULL);
    pthread_create(&t, NULL, idle_worker, NULL);
    pthread_create(&t, NULL, busy_worker, NULL);
    pthread_barrier_wait(&started);
    for (;;) pause();
}
