/* A call through a NULL function pointer: the pc is 0, the return address is at [sp]. */
volatile int sink;
void (*volatile callback)(void);
__attribute__((noinline)) void dispatch(void) { callback(); sink++; }
__attribute__((noinline)) void event_loop(void) { dispatch(); sink++; }
int main(void) { event_loop(); return sink; }
