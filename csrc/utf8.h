/*
 * utf8.h - the one UTF-8 check of the core (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF), for the encoders (encoder.c,
 * encode_json.c) and for Lua as core.utf8_check (webhooks, the CLI).
 */
#ifndef TRUTO_UTF8_H
#define TRUTO_UTF8_H

#include <stddef.h>

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* The length of the valid UTF-8 character at p (1 for ASCII, NUL
 * included; never more than end - p), or 0 when the bytes there are not
 * one (a bad lead byte, overlong, surrogate, past U+10FFFF, cut short). */
size_t utf8_sequence(const unsigned char *p, const unsigned char *end);

/* How many bytes from s are valid UTF-8: n when all are, else the offset
 * of the first bad byte (a NUL is bad when refuse_nul). */
size_t utf8_valid_prefix(const char *s, size_t n, int refuse_nul);

/* Sets core.utf8_check on the table at the top of the stack. */
void utf8_open(lua_State *L);

#pragma GCC visibility pop

#endif
