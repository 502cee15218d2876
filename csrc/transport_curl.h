/*
 * transport_curl.h - the libcurl transports as Lua userdata: a share of
 * caches, a single keep-alive handle, and (transport_multi.c) a multi
 * handle for many requests at once.
 */
#ifndef TRUTO_TRANSPORT_CURL_H
#define TRUTO_TRANSPORT_CURL_H

#include <curl/curl.h>

#include "compat.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define CURL_TRANSPORT_MT "truto.curl"
#define MULTI_TRANSPORT_MT "truto.multi"
#define SHARE_MT "truto.share"

/* Registers the metatables and initialises libcurl once per process. */
void transport_curl_open(lua_State *L);
void transport_multi_open(lua_State *L);

/* core.share() -> share (connection, DNS and TLS session caches) */
int transport_share_new(lua_State *L);

/* core.curl{ ca_file=, insecure=, proxy=, share= } -> transport */
int transport_curl_new(lua_State *L);

/* core.multi{ ca_file=, insecure=, proxy=, share= } -> multi */
int transport_multi_new(lua_State *L);

/* The CURLSH of config.share (or NULL), with a registry reference in *ref
 * that keeps it alive; release with luaL_unref. */
CURLSH *transport_share_from(lua_State *L, int config, int *ref);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
