/*
 * fuzz_common.h - what the libFuzzer targets share: one Lua 5.4 state per
 * process with truto.core linked in (instrumented), lua/ on the path, and
 * a small generator that turns fuzz bytes into a Lua value (strings with
 * any bytes, long strings, integers, floats including NaN and infinities,
 * booleans, truto.null, arrays, objects, marked arrays, holes, odd keys,
 * functions, userdata, coroutines, shared tables and cycles).
 * Never writes files; never talks to the network.
 */
#ifndef TRUTO_FUZZ_COMMON_H
#define TRUTO_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

/* The process's Lua state, with `core` (truto.core) and `endpoint` (the
 * compiled schema) as globals. */
lua_State *fuzz_state(void);

typedef struct fuzz_input {
  const uint8_t *p;
  size_t left;
} fuzz_input;

/* Pushes one Lua value made from the input (nil when it runs out). */
void fuzz_push_value(lua_State *L, fuzz_input *in, int depth);

#endif
