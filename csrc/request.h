/*
 * request.h - the endpoint: truto.schema compiled into C, and the request
 * builder that validates a body and a query against it.
 */
#ifndef TRUTO_REQUEST_H
#define TRUTO_REQUEST_H

#include "compat.h"

#define ENDPOINT_MT "truto.endpoint"

/* Registers the endpoint metatable; `array_mt` upvalue on top of stack. */
void request_open(lua_State *L);

/*
 * core.endpoint(schema) -> endpoint
 * Compiles truto.schema (see lua/truto/schema.lua). Raises on a malformed
 * schema: that is a bug in this package, not bad user input.
 */
int request_compile(lua_State *L);

#endif
