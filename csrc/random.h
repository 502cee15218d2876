/*
 * random.h - random (version 4) UUIDs for idempotency keys, from the
 * kernel's CSPRNG.
 */
#ifndef TRUTO_RANDOM_H
#define TRUTO_RANDOM_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets core.uuid4 on the module table at the stack top. */
void random_open(lua_State *L);

#pragma GCC visibility pop

#endif
