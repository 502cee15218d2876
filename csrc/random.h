/*
 * random.h - random (version 4) UUIDs for idempotency keys, from the
 * kernel's CSPRNG.
 */
#ifndef TRUTO_RANDOM_H
#define TRUTO_RANDOM_H

#include "compat.h"

/* Sets core.uuid4 on the module table at the stack top. */
void random_open(lua_State *L);

#endif
