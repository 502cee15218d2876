/*
 * http_parse.h - an HTTP/1.x response parser as a Lua userdata, on Node's
 * http_parser (Debian's libhttp-parser-dev). For transports that do their
 * own I/O (the nginx cosocket transport): they feed it the bytes they read.
 * Must never do I/O or call into Lua while parsing.
 */
#ifndef TRUTO_HTTP_PARSE_H
#define TRUTO_HTTP_PARSE_H

#include "compat.h"

#define HTTP_RESPONSE_MT "truto.http_response"

/* Registers the parser's metatable. */
void http_parse_open(lua_State *L);

/* core.http_response([skip_body]) -> parser */
int http_parse_new(lua_State *L);

#endif
