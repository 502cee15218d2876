/*
 * response_headers.c - see response_headers.h. Pure: no I/O, no lua_State kept. Must never
 * give a headers table that differs from what the nginx transport's parser
 * gives for the same block (both go through headers_add), nor hang a
 * metatable on it: it is an ordinary table to pairs, next and encoders.
 */
#include <string.h>

#include "response_headers.h"
#include "headers.h"

/* Every "name: value" line of the block after its status line into the
 * table on top of the stack. */
static void add_lines(lua_State *L, const char *head, size_t len) {
  const char *p = head, *end = head + len;
  while (p < end) {
    const char *line = p, *eol, *colon;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    p = eol < end ? eol + 1 : end;
    colon = memchr(line, ':', (size_t)(eol - line));
    if (colon == NULL) continue;
    headers_add(L, line, (size_t)(colon - line), colon + 1, (size_t)(eol - colon - 1));
  }
}

void response_headers_push(lua_State *L, const char *head, size_t len) {
  const char *p = memchr(head, '\n', len), *end;
  size_t skip = p ? (size_t)(p - head) + 1 : len;
  int lines = 0;
  head += skip;
  len -= skip;
  /* sized once: a field per line at most */
  for (p = head, end = head + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) lines++;
  luaL_checkstack(L, 6, "out of stack");
  lua_createtable(L, 0, lines);
  add_lines(L, head, len);
}

/*
 * core.rate_limit_fields(h) -> limit, remaining, reset (the ratelimit-*
 * values, each nil when absent) | nothing when none of the three is there.
 * Read raw from a plain table, through __index from a table with a
 * metatable (a host's case-insensitive headers). One call for what every
 * answer asks.
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
  lua_settop(L, 1);
  for (i = 0; i < 3; i++) {
    lua_getfield(L, 1, names[i]);
    if (!lua_isnil(L, -1)) any = 1;
  }
  return any ? 3 : 0;
}

void response_headers_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "rate_limit_fields", core_rate_limit_fields },
    { NULL, NULL }
  };
  luaL_setfuncs(L, funcs, 0);
}
