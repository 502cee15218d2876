/*
 * response_headers.h - the headers table of a libcurl response, and the
 * rate-limit fields every response is asked for.
 */
#ifndef TRUTO_RESPONSE_HEADERS_H
#define TRUTO_RESPONSE_HEADERS_H

#include <stddef.h>

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/*
 * Pushes the headers table of the header block `head` (status line first):
 * an ordinary table, no metatable, every field in (lower-case names,
 * trimmed values, repeated names joined with ", ", lines without a colon
 * and names of 128 bytes or more left out), so pairs, next and
 * cjson.encode see every header on every Lua. Raises only on memory
 * exhaustion.
 */
void response_headers_push(lua_State *L, const char *head, size_t len);

/* Sets core.rate_limit_fields on the table at the top of the stack. */
void response_headers_open(lua_State *L);

#pragma GCC visibility pop

#endif
