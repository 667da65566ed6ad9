/* forks N: fork N children one after another, each exiting at once, and reap each; then print
 * the loop's own wall time in nanoseconds (CLOCK_MONOTONIC). A tracer following forks sees a
 * fork event, the child's first stop and its exit event for every one. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000;
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) _exit(0);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d: status %#x\n", (int)pid, status);
            return 1;
        }
    }
    long long end = now_ns();
    printf("%lld\n", end - start);
    return 0;
}
