/*
 * transport_curl.h - the libcurl transport: one keep-alive easy handle per
 * client, turned into a Lua userdata.
 */
#ifndef TRUTO_TRANSPORT_CURL_H
#define TRUTO_TRANSPORT_CURL_H

#include "compat.h"

#define CURL_TRANSPORT_MT "truto.curl"

/* Registers the metatable and initialises libcurl once per process. */
void transport_curl_open(lua_State *L);

/* core.curl{ ca_file=, insecure=, proxy= } -> transport */
int transport_curl_new(lua_State *L);

#endif
