/* main -> level1 -> level2 -> level3 -> (inlined) level3_inl -> NULL store. */
#include <stdio.h>
volatile int sink;
static inline __attribute__((always_inline)) void level3_inl(volatile int *p) { *p = sink + 1; }
__attribute__((noinline)) void level3(volatile int *p) { level3_inl(p); sink++; }
__attribute__((noinline)) void level2(volatile int *p) { level3(p); sink++; }
__attribute__((noinline)) void level1(volatile int *p) { level2(p); sink++; }
int main(int argc, char **argv) { (void)argv; level1(argc > 5 ? &argc : NULL); return sink; }
