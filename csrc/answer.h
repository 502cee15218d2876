/*
 * answer.h - the per-answer work of the call path done in C: the headers
 * table of a libcurl answer, and the rate-limit fields every answer is
 * asked for.
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
 * Pushes the headers table of the header block `head` (status line first):
 * an ordinary table, no metatable, every field in (lower-case names,
 * trimmed values, repeated names joined with ", ", lines without a colon
 * and names of 128 bytes or more left out), so pairs, next and
 * cjson.encode see every header on every Lua. Raises only on memory
 * exhaustion.
 */
void answer_push_headers(lua_State *L, const char *head, size_t len);

/* Sets core.rate_limit_fields on the table at the top of the stack. */
void answer_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
