/* A SIGUSR1 handler crashes: the stack goes handler -> __restore_rt -> the raising code. */
#include <signal.h>
#include <string.h>
volatile int sink;
volatile int *nowhere;
__attribute__((noinline)) void in_handler(volatile int *p) { *p = 1; sink++; }
void handler(int sig) { (void)sig; in_handler(nowhere); sink++; }
__attribute__((noinline)) void raiser(void) { raise(SIGUSR1); sink++; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    raiser();
    return sink;
}
