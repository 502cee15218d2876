/*
 * encode_json.c - the request body encoder. lua-cjson 2.1.0 (Debian) rounds
 * integers to 14 digits and cannot mark empty arrays, so the body is ours.
 * Must never call into Lua code (raw access only) and never raise.
 */
#include "encode_json.h"

static const char hexdigits[] = "0123456789abcdef";

int encode_json_string(walk *w, const char *s, size_t n) {
  strbuf *b = &w->out;
  size_t i, run = 0;
  if (walk_check_string(w, s, n) < 0) return -1;
  strbuf_addc(b, '"');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[6];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    strbuf_add(b, s + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      default:
        u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
        u[4] = hexdigits[c >> 4]; u[5] = hexdigits[c & 15];
        strbuf_add(b, u, 6);
        continue;
    }
    strbuf_adds(b, esc);
  }
  strbuf_add(b, s + run, n - run);
  strbuf_addc(b, '"');
  return 0;
}

static int encode_table(walk *w, int idx) {
  lua_State *L = w->L;
  int shape;
  size_t first, count, i;
  if (walk_enter_table(w, idx, &shape, &first, &count) < 0) return -1;
  if (shape == SHAPE_ARRAY) {
    strbuf_addc(&w->out, '[');
    for (i = 1; i <= count; i++) {
      if (i > 1) strbuf_addc(&w->out, ',');
      lua_rawgeti(L, idx, (int)i);
      walk_push_index(w, (long long)i);
      if (encode_json_value(w, -1) < 0) { lua_pop(L, 1); return -1; }
      walk_pop(w);
      lua_pop(L, 1);
    }
    strbuf_addc(&w->out, ']');
  } else {
    strbuf_addc(&w->out, '{');
    for (i = 0; i < count; i++) {
      walk_key k = w->keys[first + i];
      if (i > 0) strbuf_addc(&w->out, ',');
      walk_push_key(w, k.s, k.len);
      if (encode_json_string(w, k.s, k.len) < 0) return -1;
      strbuf_addc(&w->out, ':');
      lua_pushlstring(L, k.s, k.len);
      lua_rawget(L, idx < 0 ? idx - 1 : idx);
      if (encode_json_value(w, -1) < 0) { lua_pop(L, 1); return -1; }
      lua_pop(L, 1);
      walk_pop(w);
    }
    strbuf_addc(&w->out, '}');
  }
  walk_leave_table(w, first);
  return 0;
}

int encode_json_value(walk *w, int idx) {
  lua_State *L = w->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      return encode_json_string(w, s, n);
    }
    case LUA_TNUMBER: {
      char buf[40];
      size_t n;
      if (walk_format_number(w, idx, buf, &n) < 0) return -1;
      strbuf_add(&w->out, buf, n);
      return 0;
    }
    case LUA_TBOOLEAN:
      strbuf_adds(&w->out, lua_toboolean(L, idx) ? "true" : "false");
      return 0;
    case LUA_TTABLE:
      return encode_table(w, idx < 0 ? lua_gettop(L) + idx + 1 : idx);
    case LUA_TLIGHTUSERDATA:
      if (walk_is_null(L, idx)) { strbuf_adds(&w->out, "null"); return 0; }
      /* fall through */
    default:
      return walk_fail(w, "is a %s, which JSON cannot carry", luaL_typename(L, idx));
  }
}
