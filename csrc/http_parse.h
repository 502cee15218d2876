/*
 * http_parse.h - an HTTP/1.x response parser as a Lua userdata, our own
 * (no library). For transports that do their own I/O (the nginx cosocket
 * transport): they feed it the bytes they read.
 * Must never do I/O or call into Lua while parsing.
 */
#ifndef TRUTO_HTTP_PARSE_H
#define TRUTO_HTTP_PARSE_H

#include "compat.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define HTTP_RESPONSE_MT "truto.http_response"

/* Status and header lines an answer may have, 1xx interim heads (and
 * chunked trailers) included: 256 KiB, the same on every transport. */
#define HTTP_MAX_HEADER_BYTES 262144

/* Registers the parser's metatable. */
void http_parse_open(lua_State *L);

/* core.http_response([skip_body]) -> parser */
int http_parse_new(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
