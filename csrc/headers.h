/*
 * headers.h - response header fields into the Lua table every transport
 * returns: lower-case names, trimmed values, repeats joined with ", ".
 * Shared by the curl transfer and the nginx transport's parser, so both
 * give the same table for the same answer. And the one request header
 * line libcurl would not send as it is: an empty value.
 */
#ifndef TRUTO_HEADERS_H
#define TRUTO_HEADERS_H

#include <stddef.h>

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Adds one field to the table on top of the stack. Empty names and names
 * of 128 bytes or more are dropped. Raises only on memory exhaustion. */
void headers_add(lua_State *L, const char *name, size_t nlen, const char *value, size_t vlen);

/* libcurl drops a request header line with nothing after its colon
 * ("Name:", "Name: "), and sends "Name;" as "Name:" with an empty value,
 * as every other transport sends it: rewrites the first into the second,
 * in place (the line only shrinks). Other lines are left as they are. */
void headers_keep_empty_value(char *line);

#pragma GCC visibility pop

#endif
