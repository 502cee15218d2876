/*
 * redis.h - core.redis_connect: a Redis connection through hiredis, for the
 * rate budget a fleet shares (truto.pace.redis) outside nginx. Blocking,
 * with timeouts on connect and on every command; never used inside nginx
 * or HAProxy, whose event loops it would block.
 */
#ifndef TRUTO_REDIS_H
#define TRUTO_REDIS_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets core.redis_connect on the table at the top of the stack. */
void redis_open(lua_State *L);

#pragma GCC visibility pop

#endif
