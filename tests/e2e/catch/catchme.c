/* Process-tree crashes for `coredumpd catch`:
 *
 *   catchme fork          a forked child crashes; the parent exits with 100 + its signal
 *   catchme exec PROG     exec PROG segv (the crash happens after exec)
 *   catchme handler       SIGUSR1's handler crashes (SIGSEGV inside a signal frame)
 *   catchme handled       a handled SIGUSR1, then a clean exit 7 (nothing to capture)
 *   catchme sleep         print "ready", then echo stdin line by line in wait_here() with 7
 *                         parked threads (8 in all), until stdin ends
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void crash_now(void) { *(volatile int *)0x10 = 1; }
static void on_usr1_crash(int sig) { (void)sig; crash_now(); }
static void on_usr1(int sig) { (void)sig; }
static void *parked(void *arg) { (void)arg; for (;;) pause(); return NULL; }
__attribute__((noinline)) void wait_here(void) {
    char buf[256];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) write(1, buf, (size_t)n);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "fork";
    if (!strcmp(mode, "fork")) {
        pid_t pid = fork();
        if (pid == 0) { crash_now(); _exit(0); }
        int st;
        waitpid(pid, &st, 0);
        return WIFSIGNALED(st) ? 100 + WTERMSIG(st) : 1;
    }
    if (!strcmp(mode, "exec") && argc > 2) { execl(argv[2], argv[2], "segv", (char *)0); return 2; }
    if (!strcmp(mode, "handler")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1_crash;
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        return 3;
    }
    if (!strcmp(mode, "handled")) {
        signal(SIGUSR1, on_usr1);
        raise(SIGUSR1);
        printf("handled\n");
        return 7;
    }
    if (!strcmp(mode, "sleep")) {
        pthread_t t;
        for (int i = 0; i < 7; i++) pthread_create(&t, NULL, parked, NULL);
        printf("ready\n");
        fflush(stdout);
        wait_here();
        return 0;
    }
    return 1;
}
