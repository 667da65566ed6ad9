/* A crash storm: N children crash at once; the parent reaps them and reports, per child, the
 * monotonic time just before its crash and the time it was reaped (one JSON object a line).
 *
 *   storm N
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
    int n = argc > 1 ? atoi(argv[1]) : 50;
    int64_t *crashed = mmap(NULL, sizeof(int64_t) * n, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t *pids = calloc(n, sizeof(pid_t));
    int gate[2];
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    if (crashed == MAP_FAILED || !pids || pipe(gate)) return 2;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            char c;
            close(gate[1]);
            setrlimit(RLIMIT_CORE, &unlimited);
            if (read(gate[0], &c, 1) < 0) _exit(3); /* EOF: the gate opened */
            crashed[i] = now_ns();
            *(volatile int *)0x10 = 1;
            _exit(4);
        }
        pids[i] = pid;
    }
    close(gate[0]);
    close(gate[1]);
    for (int done = 0; done < n; done++) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        int64_t reaped = now_ns();
        for (int i = 0; i < n; i++) {
            if (pids[i] == pid) {
                printf("{\"pid\": %d, \"status\": %d, \"crashed_ns\": %lld, \"reaped_ns\": %lld}\n",
                       pid, status, (long long)crashed[i], (long long)reaped);
            }
        }
    }
    return 0;
}
