/*
 * response_headers.h - the headers table of a libcurl response, built from
 * its raw header block and filled only when read, so that a batch of
 * thousands pays little per item.
 */
#ifndef TRUTO_RESPONSE_HEADERS_H
#define TRUTO_RESPONSE_HEADERS_H

#include <stddef.h>

#include "compat.h"

/*
 * Pushes the headers table of the header block `head` (status line first)
 * without parsing it all: the fields the call path reads on every answer
 * (content-type, retry-after, ratelimit-limit, ratelimit-remaining,
 * ratelimit-reset) are set at once; the first read of any other key fills
 * in every field (lower-case names, trimmed values, repeated names joined
 * with ", ", lines without a colon and names of 128 bytes or more left out)
 * and drops the metatable. pairs() fills it first where __pairs is honoured
 * (Lua 5.2-5.4); before any other key is read, next() and pairs() on Lua
 * 5.1 / LuaJIT see only the eager fields. core.headers_fill(h) fills it
 * explicitly. Raises only on memory exhaustion. Needs response_headers_open first.
 */
void response_headers_push(lua_State *L, const char *head, size_t len);

/* Sets core.headers_fill and core.rate_limit_fields on the table at the
 * top of the stack and registers the lazy headers' metatable. */
void response_headers_open(lua_State *L);

#endif
