/*
 * clock.h - the one clock of the core: monotonic seconds, for elapsed
 * times, deadlines and stall guards (never the wall clock: it jumps), and
 * the blocking sleep outside nginx.
 */
#ifndef TRUTO_CLOCK_H
#define TRUTO_CLOCK_H

#include "compat.h"

/* Seconds on the monotonic clock. */
double clock_now(void);

/* Sets core.now and core.sleep on the module table at the stack top. */
void clock_open(lua_State *L);

#endif
