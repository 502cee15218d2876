/*
 * clock.h - the one clock of the core: monotonic seconds, for elapsed
 * times, deadlines and stall guards (never the wall clock: it jumps), and
 * the blocking sleep outside nginx; and the one rule for seconds as
 * milliseconds.
 */
#ifndef TRUTO_CLOCK_H
#define TRUTO_CLOCK_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Seconds on the monotonic clock. */
double clock_now(void);

/* Seconds as whole milliseconds: the one rounding rule for every timeout
 * and wait handed on in milliseconds (libcurl, poll, nginx cosockets,
 * HAProxy): rounded up, so nothing ends sooner than asked; at least 1 (0
 * means "no limit" to some); at most 2^31 - 1; NaN or negative is 1. */
long clock_milliseconds(double seconds);

/* Sets core.now, core.sleep and core.milliseconds on the module table at
 * the stack top. */
void clock_open(lua_State *L);

#pragma GCC visibility pop

#endif
