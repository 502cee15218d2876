/*
 * answer.h - the per-answer work of the call path done in C, so that a
 * batch of thousands pays little per item: the headers table of a libcurl
 * answer filled only when read.
 */
#ifndef TRUTO_ANSWER_H
#define TRUTO_ANSWER_H

#include <stddef.h>

#include "compat.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

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
 * explicitly. Raises only on memory exhaustion. Needs answer_open first.
 */
void answer_push_headers(lua_State *L, const char *head, size_t len);

/* Sets core.headers_fill and core.rate_limit_fields on the table at the
 * top of the stack and registers the lazy headers' metatable. */
void answer_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
