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
#include <math.h>

#include "compat.h"
#include "clock.h"
#include "decode_json.h"
#include "hmac.h"
#include "http_parse.h"
#include "json_markers.h"
#include "operation.h"
#include "random.h"
#include "response_headers.h"
#include "signals.h"
#include "transport_curl.h"

#if TRUTO_HAS_INTEGERS
static void normalize_value(lua_State *L, int idx, int depth) {
  if (depth > 1000 || !lua_checkstack(L, 3)) return;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number n = lua_tonumber(L, -1);
      if (n == floor(n) && fabs(n) <= 9007199254740992.0) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)n);
        lua_rawset(L, idx);
      }
    } else if (t == LUA_TTABLE) {
      normalize_value(L, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 1);
  }
}
#endif

/*
 * core.normalize(value) -> value
 * lua-cjson 2.1.0 decodes every number as a float; this turns integral ones
 * within +-2^53 back into integers, in place (Lua 5.3+; a no-op before).
 * For the webhook and CLI readers, which still use lua-cjson; answers go
 * through core.json_decode (decode_json.c), which makes integers itself.
 */
static int core_normalize(lua_State *L) {
  lua_settop(L, 1);
#if TRUTO_HAS_INTEGERS
  if (lua_type(L, 1) == LUA_TTABLE) normalize_value(L, 1, 0);
  else if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1)) {
    lua_Number n = lua_tonumber(L, 1);
    if (n == floor(n) && fabs(n) <= 9007199254740992.0) lua_pushinteger(L, (lua_Integer)n);
  }
#endif
  return 1;
}

/* The parts, in the order they are opened: each sets its fields on the
 * module table at the stack top and leaves the stack as it found it. */
static const struct {
  const char *name;
  void (*open)(lua_State *L);
} parts[] = {
  { "clock", clock_open },                  /* now, sleep */
  { "random", random_open },                /* uuid4 */
  { "json_markers", json_markers_open },    /* null, array, array_mt */
  { "operation", operation_open },          /* operation, encode_json, FIELD_TYPES */
  { "decode_json", decode_json_open },      /* json_decode */
  { "hmac", hmac_open },                    /* hmac_sha256, hmac_sha256_verify */
  { "response_headers", response_headers_open }, /* headers_fill, rate_limit_fields */
  { "transport_curl", transport_curl_open },     /* share, curl */
  { "transport_multi", transport_multi_open },   /* multi */
  { "http_parse", http_parse_open },        /* http_response */
  { "signals", signals_open },              /* signals */
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

/* The one symbol core.so exports (the Makefile hides every other). */
__attribute__((visibility("default"))) int luaopen_truto_core(lua_State *L);

int luaopen_truto_core(lua_State *L) {
  int i;
  pin_library();
  lua_newtable(L);
  for (i = 0; parts[i].name != NULL; i++) parts[i].open(L);
  /* core.normalize stays here only until issue 19 item 3 removes it */
  lua_pushcfunction(L, core_normalize);
  lua_setfield(L, -2, "normalize");
  return 1;
}
