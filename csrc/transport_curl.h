/*
 * transport_curl.h - the libcurl transports as Lua userdata: a share of
 * caches, a single keep-alive handle, and (transport_multi.c) a multi
 * handle for many requests at once.
 */
#ifndef TRUTO_TRANSPORT_CURL_H
#define TRUTO_TRANSPORT_CURL_H

#include <curl/curl.h>

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

#define CURL_TRANSPORT_CLASS "truto.curl"
#define MULTI_TRANSPORT_CLASS "truto.multi"
#define SHARE_CLASS "truto.share"

/* Initialise libcurl once per process, register the classes, and set
 * core.share() and core.curl{ ca_file=, insecure=, proxy=, share= }
 * (transport_curl.c) / core.multi{ same } (transport_multi.c) on the
 * module table at the stack top. */
void transport_curl_open(lua_State *L);
void transport_multi_open(lua_State *L);

/* The CURLSH of config.share (or NULL), with a registry reference in *ref
 * that keeps it alive; release with luaL_unref. */
CURLSH *transport_share_from(lua_State *L, int config, int *ref);

#pragma GCC visibility pop

#endif
