/*
 * encode_json.c - the request body encoder. lua-cjson 2.1.0 (Debian) rounds
 * integers to 14 digits and cannot mark empty arrays, so the body is ours.
 * Must never call into Lua code (raw access only) and never raise.
 */
#include <stdint.h>

#include "encode_json.h"
#include "utf8.h"

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

/* Whether any of the 8 bytes in x needs a look (a control character, '"',
 * '\\', DEL or a byte >= 0x80). May say yes for a clean word after a byte
 * that needs one (borrows), never no for one that does: the byte loop
 * decides. */
static inline int word_needs_look(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
  uint64_t look = ((x - ones * 0x20) & ~x)       /* < 0x20 */
                | ((quote - ones) & ~quote)      /* == '"' */
                | ((backslash - ones) & ~backslash) /* == '\\' */
                | (x + ones)                      /* 0x7f (and >= 0x80 by carry or high bit) */
                | x;                              /* >= 0x80 */
  return (look & high) != 0;
}

/* One pass: checks UTF-8 and escapes as it writes straight into the
 * buffer; plain ASCII is checked and copied a word at a time. Room for the
 * rest of the string, the closing quote and a word of slack is kept
 * reserved at every step (an escape reserves more first). */
int encode_json_string(walk *w, const char *s, size_t n) {
  strbuf *b = &w->out;
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  char *o;
  if (!byte_class['"']) init_byte_class();
  if ((b->cap - b->len < n + 10 || n > (size_t)-1 - 10) && !strbuf_grow(b, n + 10)) return 0;
  o = b->data + b->len;
  *o++ = '"';
  while (p < end) {
    unsigned char c, cls;
    const unsigned char *q = end - p >= 8 ? p : n >= 8 ? end - 8 : NULL, *lim;
    if (q) {
      /* a word from p, or the last word (overlapping bytes already copied
       * as they are: a clean word holds nothing that was escaped) */
      uint64_t x;
      memcpy(&x, q, 8);
      if (!word_needs_look(x)) {
        memcpy(o - (p - q), &x, 8);
        o += q + 8 - p;
        p = q + 8;
        continue;
      }
    }
    /* bytes one at a time, up to the one that needs a look */
    lim = end - p > 8 ? p + 8 : end;
    while (p < lim && byte_class[*p] == 0) *o++ = (char)*p++;
    if (p == lim) continue;
    c = *p;
    cls = byte_class[c];
    if (cls == 2) {
      size_t len = utf8_sequence(p, end);
      if (len == 0) break;
      memcpy(o, p, len);
      o += len;
      p += len;
      continue;
    }
    if (cls == 3) break;
    b->len = (size_t)(o - b->data);
    if (b->cap - b->len < (size_t)(end - p) + 16 && !strbuf_grow(b, (size_t)(end - p) + 16)) return 0;
    o = b->data + b->len;
    *o++ = '\\';
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      default:
        *o++ = 'u'; *o++ = '0'; *o++ = '0';
        *o++ = hexdigits[c >> 4]; *o++ = hexdigits[c & 15];
    }
    p++;
  }
  b->len = (size_t)(o - b->data);
  if (p < end) return walk_fail_string(w, s, (size_t)(p - (const unsigned char *)s));
  b->data[b->len++] = '"';
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
    int pushed;
    strbuf_addc(&w->out, '{');
    for (i = 0; i < count; i++) {
      walk_key k = w->keys[first + i];
      if (i > 0) strbuf_addc(&w->out, ',');
      walk_push_key(w, k.s, k.len);
      if (encode_json_string(w, k.s, k.len) < 0) return -1;
      strbuf_addc(&w->out, ':');
      if (encode_json_value(w, walk_value(w, k, &pushed)) < 0) return -1;
      if (pushed) lua_pop(L, 1);
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
