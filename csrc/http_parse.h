/*
 * http_parse.h - an HTTP/1.x response parser as a Lua userdata, our own
 * (no library). For transports that do their own I/O (the nginx cosocket
 * transport): they feed it the bytes they read.
 * Must never do I/O or call into Lua while parsing.
 */
#ifndef TRUTO_HTTP_PARSE_H
#define TRUTO_HTTP_PARSE_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

#define HTTP_RESPONSE_CLASS "truto.http_response"

/* Status and header lines an answer may have, 1xx interim heads (and
 * chunked trailers) included: 256 KiB, the same on every transport. */
#define HTTP_MAX_HEADER_BYTES 262144

/* Registers the parser's class and sets core.http_response([skip_body])
 * -> parser on the module table at the stack top. */
void http_parse_open(lua_State *L);

#pragma GCC visibility pop

#endif
