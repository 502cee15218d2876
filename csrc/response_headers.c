/*
 * response_headers.c - see response_headers.h. Pure: no I/O, no lua_State kept. Must never
 * let a lazy headers table differ from the eager one once filled (lower-case
 * names, trimmed values, repeats joined with ", ", the same lines skipped),
 * nor answer nil for a field the block has.
 */
#include <string.h>
#include <strings.h>

#include "response_headers.h"
#include "headers.h"

#define HEADERS_MT "truto.lazy_headers"
#define HEADERS_RAW "truto.lazy_headers.raw" /* weak-keyed: table -> raw block */

/* The fields set at once, the ones the call path reads on every answer. */
static const char *const EAGER[] = {
  "content-type", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", NULL
};

/* Is `name` one of EAGER (any case)? By length first: called per line. */
static int is_eager(const char *name, size_t len) {
  switch (len) {
    case 11: return strncasecmp(name, "retry-after", 11) == 0;
    case 12: return strncasecmp(name, "content-type", 12) == 0;
    case 15: return strncasecmp(name, "ratelimit-limit", 15) == 0
               || strncasecmp(name, "ratelimit-reset", 15) == 0;
    case 19: return strncasecmp(name, "ratelimit-remaining", 19) == 0;
    default: return 0;
  }
}

/* Calls add(line...) for each "name: value" line of the block after its
 * status line; eager_only: just the EAGER names. Table on the stack top. */
static void add_lines(lua_State *L, const char *head, size_t len, int eager_only) {
  const char *p = head, *end = head + len;
  while (p < end) {
    const char *line = p, *eol, *colon;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    p = eol < end ? eol + 1 : end;
    colon = memchr(line, ':', (size_t)(eol - line));
    if (colon == NULL) continue;
    if (eager_only && !is_eager(line, (size_t)(colon - line))) continue;
    headers_add(L, line, (size_t)(colon - line), colon + 1, (size_t)(eol - colon - 1));
  }
}

void response_headers_push(lua_State *L, const char *head, size_t len) {
  const char *p = memchr(head, '\n', len);
  size_t skip = p ? (size_t)(p - head) + 1 : len;
  head += skip;
  len -= skip;
  luaL_checkstack(L, 6, "out of stack");
  lua_createtable(L, 0, 4); /* content-type and the ratelimit-* trio, unresized */
  add_lines(L, head, len, 1);
  if (len == 0) return; /* nothing else to read: a plain table */
  lua_getfield(L, LUA_REGISTRYINDEX, HEADERS_RAW);
  lua_pushvalue(L, -2);
  lua_pushlstring(L, head, len);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_getmetatable(L, HEADERS_MT);
  lua_setmetatable(L, -2);
}

/* Fills the lazy table at `idx` (absolute) if it still is one. */
static void fill(lua_State *L, int idx) {
  int i;
  size_t len;
  const char *raw;
  lua_getfield(L, LUA_REGISTRYINDEX, HEADERS_RAW);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 2);
    return;
  }
  raw = lua_tolstring(L, -1, &len); /* stays alive on the stack */
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, -4);
  lua_pushvalue(L, idx);
  /* the eager fields again from scratch, so repeats join as they would */
  for (i = 0; EAGER[i]; i++) {
    lua_pushstring(L, EAGER[i]);
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  add_lines(L, raw, len, 0);
  lua_pop(L, 3);
  lua_pushnil(L);
  lua_setmetatable(L, idx);
}

/* __index(h, k): an eager field not set is absent; anything else fills. */
static int lazy_index(lua_State *L) {
  size_t len;
  const char *k = lua_tolstring(L, 2, &len);
  if (lua_type(L, 2) == LUA_TSTRING && is_eager(k, len)) {
    /* only lower-case names are ever set */
    size_t i;
    for (i = 0; i < len; i++)
      if (k[i] >= 'A' && k[i] <= 'Z') break;
    if (i == len) return 0;
  }
  fill(L, 1);
  lua_settop(L, 2);
  lua_rawget(L, 1);
  return 1;
}

static int lazy_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/* __pairs(h): filled first, then a plain traversal. */
static int lazy_pairs(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fill(L, 1);
  lua_pushcfunction(L, lazy_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/*
 * core.headers_fill(h) -> h
 * Fills a lazy headers table now (before a traversal with next, or before
 * redacting it); any other table is returned as it is.
 */
static int core_headers_fill(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  fill(L, 1);
  return 1;
}

/*
 * core.rate_limit_fields(h) -> limit, remaining, reset (the ratelimit-*
 * values, each nil when absent) | nothing when none of the three is there.
 * Read raw from a plain table and from a lazy one (whose ratelimit-*
 * fields are eager: absent there is absent, no parse), through __index
 * from a table with any other metatable (a host's case-insensitive
 * headers). One call for what every answer asks.
 */
static int core_rate_limit_fields(lua_State *L) {
  static const char *const names[] = {
    "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"
  };
  int i, any = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  for (i = 0; i < 3; i++) {
    lua_pushstring(L, names[i]);
    lua_rawget(L, 1);
    if (!lua_isnil(L, -1)) any = 1;
  }
  if (any) return 3;
  if (!lua_getmetatable(L, 1)) return 0;
  luaL_getmetatable(L, HEADERS_MT);
  if (lua_rawequal(L, -1, -2)) return 0;
  lua_settop(L, 1);
  for (i = 0; i < 3; i++) {
    lua_getfield(L, 1, names[i]);
    if (!lua_isnil(L, -1)) any = 1;
  }
  return any ? 3 : 0;
}

void response_headers_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "headers_fill", core_headers_fill },
    { "rate_limit_fields", core_rate_limit_fields },
    { NULL, NULL }
  };
  luaL_setfuncs(L, funcs, 0);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, HEADERS_RAW);
  luaL_newmetatable(L, HEADERS_MT);
  lua_pushcfunction(L, lazy_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, lazy_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pop(L, 1);
}
