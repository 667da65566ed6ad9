/* rusage_wrap TAG CMD ARGS...: run CMD as a child, then append one line to LOG (set at
 * compile time with -DLOG=...) with the child tree's CPU time and peak RSS:
 *   TAG ARGV1 start_ns end_ns utime_s stime_s maxrss_kib exit_status
 * start/end are CLOCK_MONOTONIC (the same clock as Python's time.monotonic()).
 * For a kernel-spawned pipe helper, getrusage(RUSAGE_CHILDREN) of the parent is the only
 * exact account of the helper's CPU and peak RSS (the kernel does not wait for it).
 * When LISTEN_PID is set (socket activation), it is re-pointed at the child. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) return 127;
    long long start = now_ns();
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        if (getenv("LISTEN_PID")) {
            char buf[32];
            snprintf(buf, sizeof buf, "%d", (int)getpid());
            setenv("LISTEN_PID", buf, 1);
        }
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {}
    long long end = now_ns();
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    FILE *f = fopen(LOG, "a");
    if (f) {
        fprintf(f, "%s %s %lld %lld %ld.%06ld %ld.%06ld %ld %d\n", argv[1],
                argc > 3 ? argv[3] : "-", start, end,
                (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
                (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss, status);
        fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
