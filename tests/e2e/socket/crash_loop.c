/* A crash-looping program: N times, fork a child that crashes (SIGSEGV), wait for it, go on.
 * One JSON object a line per crash: the child's pid, its raw wait status, the monotonic time
 * just before it crashed and the time it was reaped; then the loop's own duration.
 *
 *   crash_loop N
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200;
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    volatile int64_t *crashed = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (crashed == MAP_FAILED || setrlimit(RLIMIT_CORE, &unlimited)) return 2;
    int64_t start = now_ns();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            *crashed = now_ns();
            *(volatile int *)0x10 = 1;
            _exit(4);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) return 2;
        int64_t reaped = now_ns();
        printf("{\"pid\": %d, \"status\": %d, \"crashed_ns\": %lld, \"reaped_ns\": %lld}\n", pid,
               status, (long long)*crashed, (long long)reaped);
    }
    printf("{\"loop_ns\": %lld}\n", (long long)(now_ns() - start));
    return 0;
}
