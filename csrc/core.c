/*
 * core.c - luaopen_truto_core: the C half of `truto`, wired from its parts
 * (as LuaSocket's luasocket.c: one table of *_open functions, each setting
 * its own fields on the module table). Nothing here but the wiring: each
 * part lives in the file named after it.
 *
 * No C globals that change (libcurl's one-time init aside); per-instance
 * state lives in userdata (class.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "compat.h"
#include "clock.h"
#include "decode_json.h"
#include "hmac.h"
#include "http_parse.h"
#include "json_markers.h"
#include "operation.h"
#include "random.h"
#include "redis.h"
#include "response_headers.h"
#include "signals.h"
#include "transport_curl.h"
#include "utf8.h"

/* The parts, in the order they are opened: each sets its fields on the
 * module table at the stack top and leaves the stack as it found it. */
static const struct {
  const char *name;
  void (*open)(lua_State *L);
} parts[] = {
  { "clock", clock_open },                  /* now, sleep, milliseconds */
  { "random", random_open },                /* uuid4 */
  { "json_markers", json_markers_open },    /* null, array, array_mt */
  { "operation", operation_open },          /* operation, encode_json, FIELD_TYPES */
  { "decode_json", decode_json_open },      /* json_decode */
  { "utf8", utf8_open },                    /* utf8_check */
  { "hmac", hmac_open },                    /* hmac_sha256, hmac_sha256_verify, sha256 */
  { "response_headers", response_headers_open }, /* rate_limit_fields */
  { "transport_curl", transport_curl_open },     /* share, curl */
  { "transport_multi", transport_multi_open },   /* multi */
  { "http_parse", http_parse_open },        /* http_response */
  { "signals", signals_open },              /* signals */
  { "redis", redis_open },                  /* redis_connect */
  { NULL, NULL }
};

/* Keeps this library loaded for the life of the process, and libcurl and
 * libcrypto with it: Lua unloads C modules when a state closes, while
 * libcurl may still have a resolver thread, the TLS libraries exit-time
 * handlers, and LeakSanitizer records of their thread-local blocks (its
 * exit-time check crashed on the unmapped ones). */
static void pin_library(void) {
#if defined(RTLD_NODELETE) && defined(RTLD_NOLOAD)
  static const char anchor = 0; /* any address inside this library */
  Dl_info info;
  if (dladdr(&anchor, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

/* The one symbol core.so exports. Every other name is hidden by the
 * header that declares it (#pragma GCC visibility push(hidden) in each
 * csrc header), not by a compiler flag: LuaRocks' builtin backend passes none,
 * and a host exporting the same name (Neovim exports strbuf_*) would
 * otherwise have the core's calls bound to its function. Default visibility
 * here, so a build with -fvisibility=hidden in CFLAGS still exports it;
 * spec/packaging_spec.lua checks every build with nm. */
__attribute__((visibility("default"))) int luaopen_truto_core(lua_State *L);

int luaopen_truto_core(lua_State *L) {
  int i;
  pin_library();
  lua_newtable(L);
  for (i = 0; parts[i].name != NULL; i++) parts[i].open(L);
  return 1;
}
