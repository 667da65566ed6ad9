/* bigproc MIB: allocate MIB MiB, fill it with 0x5a, print "ready" and sleep. On SIGUSR1 print
 * the sum of every byte ("sum N": proof that it still runs and its memory is intact); exit on
 * SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t asked;

static void on_usr1(int signo) { (void)signo; asked = 1; }

int main(int argc, char **argv) {
    size_t size = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
    unsigned char *buf = malloc(size);
    if (!buf) { perror("malloc"); return 1; }
    memset(buf, 0x5a, size);
    signal(SIGUSR1, on_usr1);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
        if (asked) {
            asked = 0;
            unsigned long long sum = 0;
            for (size_t i = 0; i < size; i++) sum += buf[i];
            printf("sum %llu\n", sum);
            fflush(stdout);
        }
    }
}
