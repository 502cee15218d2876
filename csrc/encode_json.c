/*
 * encode_json.c - the request body encoder. lua-cjson 2.1.0 (Debian) rounds
 * integers to 14 digits and cannot mark empty arrays, so the body is ours.
 * Must never call into Lua code (raw access only) and never raise.
 */
#include "encode_json.h"

static const char hexdigits[] = "0123456789abcdef";

/* What each byte needs: 0 copy as is, 1 escape, 2 start of a multi-byte
 * UTF-8 sequence (checked), 3 refused (NUL). */
static unsigned char byte_class[256];

static void init_byte_class(void) {
  int c;
  for (c = 0; c < 256; c++)
    byte_class[c] = c < 0x20 || c == '"' || c == '\\' || c == 0x7f ? 1 : c >= 0x80 ? 2 : 0;
  byte_class[0] = 3;
}

/* One pass: checks UTF-8 and escapes as it copies. */
int encode_json_string(walk *w, const char *s, size_t n) {
  strbuf *b = &w->out;
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
  if (!byte_class['"']) init_byte_class();
  if (b->cap - b->len < n + 2 && !strbuf_grow(b, n + 2)) return 0;
  b->data[b->len++] = '"';
  while (p < end) {
    unsigned char cls = byte_class[*p];
    if (cls == 0) { p++; continue; }
    if (cls == 2) {
      size_t len = walk_utf8_sequence(p, end);
      if (len == 0) return walk_fail_string(w, s, (size_t)(p - (const unsigned char *)s));
      p += len;
      continue;
    }
    if (cls == 3) return walk_fail_string(w, s, (size_t)(p - (const unsigned char *)s));
    strbuf_add(b, (const char *)run, (size_t)(p - run));
    switch (*p) {
      case '"': strbuf_add(b, "\\\"", 2); break;
      case '\\': strbuf_add(b, "\\\\", 2); break;
      case '\n': strbuf_add(b, "\\n", 2); break;
      case '\r': strbuf_add(b, "\\r", 2); break;
      case '\t': strbuf_add(b, "\\t", 2); break;
      case '\b': strbuf_add(b, "\\b", 2); break;
      case '\f': strbuf_add(b, "\\f", 2); break;
      default: {
        char u[6];
        u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
        u[4] = hexdigits[*p >> 4]; u[5] = hexdigits[*p & 15];
        strbuf_add(b, u, 6);
      }
    }
    run = ++p;
  }
  strbuf_add(b, (const char *)run, (size_t)(p - run));
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
      walk_push_value(w, k);
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
