/* The demo's sample crashes, one program with three ways to die (built with -g -O0):
 *   crashme segv      a NULL request dereferenced two calls deep in main's thread
 *   crashme abort     a failed consistency check calls abort()
 *   crashme threads   a worker thread crashes while two others wait for work (default)  */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct request { const char *path; int length; };

static pthread_barrier_t started;

__attribute__((noinline)) static int parse_request(const struct request *req) {
    return req->length * 2;          /* req is NULL: SIGSEGV here */
}

__attribute__((noinline)) static int handle_connection(const struct request *req) {
    return parse_request(req) + 1;
}

__attribute__((noinline)) static void check_balance(long balance) {
    if (balance < 0)
        abort();                     /* "impossible" state: SIGABRT */
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

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "threads";
    if (!strcmp(mode, "segv"))
        return handle_connection(NULL);
    if (!strcmp(mode, "abort")) {
        check_balance(-42);
        return 0;
    }
    pthread_t t;
    pthread_barrier_init(&started, NULL, 4);
    pthread_create(&t, NULL, idle_worker, NULL);
    pthread_create(&t, NULL, idle_worker, NULL);
    pthread_create(&t, NULL, busy_worker, NULL);
    pthread_barrier_wait(&started);
    for (;;) pause();
}
