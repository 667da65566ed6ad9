#include <stdlib.h>
volatile int sink;
__attribute__((noinline)) void check_invariant(int v) { if (v != 42) abort(); sink++; }
__attribute__((noinline)) void process(int v) { check_invariant(v); sink++; }
int main(void) { process(7); return sink; }
