/*
 * encoder.c - the shared half of the encoders (see encoder.h): path tracking,
 * error messages, table shape, UTF-8 and number rules. Must never raise
 * except on memory exhaustion inside the Lua API itself.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "utf8.h"
#include "encoder.h"

void encoder_init(encoder *w) {
  memset(w, 0, sizeof *w);
  strbuf_init(&w->out);
}

void encoder_free(encoder *w) {
  strbuf_free(&w->out);
  free(w->keys);
  w->keys = NULL;
  w->keycap = 0;
}

void encoder_begin(encoder *w, lua_State *L, int array_mt, const char *root, int scratch) {
  w->L = L;
  w->root = root;
  strbuf_reset(&w->out);
  w->depth = 0;
  w->nkeys = 0;
  w->array_mt = array_mt;
  w->failed = 0;
  if (scratch == 0) {
    lua_newtable(L);
    scratch = lua_gettop(L);
  }
  w->scratch = scratch;
  w->nvalues = w->maxvalues = 0;
  w->stacked = 0;
  w->field[0] = w->message[0] = '\0';
}

static int is_identifier(const char *s, size_t n) {
  size_t i;
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

void encoder_printable(char *dst, size_t cap, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k = 0;
  while (i < n) {
    size_t len = utf8_sequence(p + i, p + n);
    if (k + (len ? len : 1) > cap - 4) break;
    if (len == 0 || p[i] < 0x20 || p[i] == 0x7f || p[i] == '"' || p[i] == '\\') {
      dst[k++] = '?';
      i += len ? len : 1;
    } else {
      memcpy(dst + k, p + i, len);
      k += len;
      i += len;
    }
  }
  if (i < n) { dst[k++] = '.'; dst[k++] = '.'; dst[k++] = '.'; }
  dst[k] = '\0';
}

/* Writes the path as users read it: name.key[2]["odd key"]. */
static void format_path(encoder *w) {
  size_t used = 0, cap = sizeof w->field;
  int i;
  w->field[0] = '\0';
  if (w->depth == 0) {
    snprintf(w->field, cap, "%s", w->root ? w->root : "value");
    return;
  }
  for (i = 0; i < w->depth && used < cap - 1; i++) {
    const encoder_seg *s = &w->path[i];
    int n;
    if (s->key == NULL)
      n = snprintf(w->field + used, cap - used, "[%lld]", s->index);
    else {
      /* quote odd keys; bytes that would garble a message are shown as ?,
       * long keys are cut */
      char safe[64];
      encoder_printable(safe, sizeof safe, s->key, s->klen);
      if (is_identifier(s->key, s->klen))
        n = snprintf(w->field + used, cap - used, "%s%s", i ? "." : "", safe);
      else
        n = snprintf(w->field + used, cap - used, "[\"%s\"]", safe);
    }
    if (n < 0) break;
    used += (size_t)n;
  }
  if (used >= cap) w->field[cap - 1] = '\0';
}

int encoder_fail(encoder *w, const char *fmt, ...) {
  va_list ap;
  char detail[ENCODER_ERR_SIZE / 2];
  if (w->failed) return -1;
  w->failed = 1;
  format_path(w);
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  snprintf(w->message, sizeof w->message, "%s: %s", w->field, detail);
  return -1;
}

int encoder_fail_field(encoder *w, const char *field, const char *fmt, ...) {
  va_list ap;
  char detail[ENCODER_ERR_SIZE / 2];
  if (w->failed) return -1;
  w->failed = 1;
  snprintf(w->field, sizeof w->field, "%s", field);
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  snprintf(w->message, sizeof w->message, "%s: %s", field, detail);
  return -1;
}

static int compare_keys(const void *a, const void *b) {
  const encoder_key *x = a, *y = b;
  return encoder_compare_bytes(x->s, x->len, y->s, y->len);
}

/* Objects are small: insertion sort beats qsort's setup (and its malloc)
 * below a few dozen keys. */
static void sort_keys(encoder_key *k, size_t n) {
  size_t i, j;
  if (n > 24) {
    qsort(k, n, sizeof *k, compare_keys);
    return;
  }
  for (i = 1; i < n; i++) {
    encoder_key x = k[i];
    for (j = i; j > 0 && compare_keys(&k[j - 1], &x) > 0; j--) k[j] = k[j - 1];
    k[j] = x;
  }
}

static int push_sort_key(encoder *w, const char *s, size_t len, int slot) {
  if (w->nkeys == w->keycap) {
    size_t cap = w->keycap ? w->keycap * 2 : 32;
    encoder_key *k = realloc(w->keys, cap * sizeof *k);
    if (k == NULL) return encoder_fail(w, "out of memory");
    w->keys = k;
    w->keycap = cap;
  }
  w->keys[w->nkeys].s = s;
  w->keys[w->nkeys].len = len;
  w->keys[w->nkeys].slot = slot;
  w->nkeys++;
  return 0;
}

/* An integer-valued table key >= 1, as arrays have; 0 otherwise. */
static long long array_index(lua_State *L, int idx) {
#if TRUTO_HAS_INTEGERS
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    return i >= 1 ? (long long)i : 0;
  }
  return 0;
#else
  lua_Number n = lua_tonumber(L, idx);
  if (n >= 1 && n <= 9007199254740992.0 && n == floor(n)) return (long long)n;
  return 0;
#endif
}

int encoder_enter_table(encoder *w, int idx, int *shape, size_t *first, size_t *count) {
  lua_State *L = w->L;
  size_t nstr = 0, nint = 0;
  long long maxint = 0;
  int marked = 0, i, base, room, here = 0;
  const void *self;
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  self = lua_topointer(L, idx);

  if (w->depth > ENCODER_MAX_DEPTH)
    return encoder_fail(w, "nested deeper than %d levels", ENCODER_MAX_DEPTH);
  for (i = 0; i < w->depth; i++)
    if (w->open[i] == self) return encoder_fail(w, "table contains itself (a cycle)");
  /* room for the values of the first keys (each with a copy of its key),
   * beyond the 4 slots lua_next and the checks need */
  room = lua_checkstack(L, 4 + 16) ? 16 : 0;
  if (!room && !lua_checkstack(L, 4)) return encoder_fail(w, "out of Lua stack");
  if (lua_getmetatable(L, idx)) {
    marked = w->array_mt && lua_rawequal(L, -1, w->array_mt);
    lua_pop(L, 1);
    if (!marked)
      return encoder_fail(w, "is a table with a metatable; pass a plain table (proxies are not "
                          "read), or truto.array(t) for an array");
  }

  *first = w->nkeys;
  base = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      /* the first ENCODER_STACK_KEYS open keys keep their values on the Lua
       * stack (fast); the rest go to the scratch table (a Lua table: no
       * limit tied to the C stack of Lua 5.1 and LuaJIT). The key stays on
       * top for lua_next; its bytes stay valid: the encoded table holds it */
      size_t len;
      const char *s;
      int slot;
      if (w->stacked < ENCODER_STACK_KEYS && (room > 0 || (lua_checkstack(L, 4 + 16) && (room = 16)))) {
        lua_pushvalue(L, -2);         /* [.. key, value, key]: the key again for lua_next */
        slot = -(base + 2 * here + 2); /* the value (the stack grows by 2 per kept key) */
        here++;
        w->stacked++;
        room -= 2;
      } else {
        lua_rawseti(L, w->scratch, ++w->nvalues);
        lua_pushvalue(L, -1);         /* and the key, for lookups without interning it again */
        lua_rawseti(L, w->scratch, ++w->nvalues);
        if (w->nvalues > w->maxvalues) w->maxvalues = w->nvalues;
        slot = w->nvalues - 1;
      }
      s = lua_tolstring(L, -1, &len);
      if (push_sort_key(w, s, len, slot) < 0) {
        w->nkeys = *first;
        lua_settop(L, base);
        return -1;
      }
      nstr++;
    } else {
      long long k;
      lua_pop(L, 1);
      k = kt == LUA_TNUMBER ? array_index(L, -1) : 0;
      if (k == 0) {
        w->nkeys = *first;
        lua_settop(L, base);
        return encoder_fail(w, "has a %s key; JSON objects need string keys and arrays 1..n",
                         kt == LUA_TNUMBER ? "non-positive or fractional number" : lua_typename(L, kt));
      }
      nint++;
      if (k > maxint) maxint = k;
    }
  }
  if (nstr && nint) {
    w->nkeys = *first;
    lua_settop(L, base);
    return encoder_fail(w, "mixes array items and string keys");
  }
  if (nint && (unsigned long long)maxint != nint) {
    w->nkeys = *first;
    lua_settop(L, base);
    return encoder_fail(w, "is a sparse array (%lu items, largest index %lld); use truto.null for holes",
                     (unsigned long)nint, maxint);
  }
  if (marked && nstr) {
    w->nkeys = *first;
    lua_settop(L, base);
    return encoder_fail(w, "is marked truto.array but has string keys");
  }
  if (nint || marked) {
    *shape = SHAPE_ARRAY;
    *count = nint;
  } else {
    *shape = SHAPE_OBJECT;
    *count = nstr;
    if (nstr > 1) sort_keys(w->keys + *first, nstr);
  }
  w->open[w->depth] = self;
  return 0;
}

void encoder_leave_table(encoder *w, size_t first) {
  /* stack slots are popped; scratch slots are reused by the next table
   * (encoder_end drops their references) */
  size_t i;
  int lowest_stack = 0, lowest_scratch = 0;
  for (i = first; i < w->nkeys; i++) {
    int slot = w->keys[i].slot;
    if (slot < 0) {
      if (lowest_stack == 0 || -slot < lowest_stack) lowest_stack = -slot;
      w->stacked--;
    } else if (lowest_scratch == 0 || slot < lowest_scratch) {
      lowest_scratch = slot;
    }
  }
  if (lowest_stack) lua_settop(w->L, lowest_stack - 2); /* each value sits above a copy of its key */
  if (lowest_scratch) w->nvalues = lowest_scratch - 1;
  w->nkeys = first;
}

void encoder_end(encoder *w) {
  int i;
  for (i = 1; i <= w->maxvalues; i++) {
    lua_pushnil(w->L);
    lua_rawseti(w->L, w->scratch, i);
  }
  w->maxvalues = w->nvalues = 0;
}

int encoder_fail_string(encoder *w, const char *s, size_t at) {
  if (s[at] == '\0') return encoder_fail(w, "contains a NUL byte at offset %lu", (unsigned long)at);
  return encoder_fail(w, "is not valid UTF-8 (bad byte at offset %lu)", (unsigned long)at);
}

int encoder_check_string(encoder *w, const char *s, size_t n) {
  size_t at = utf8_valid_prefix(s, n, 1);
  return at == n ? 0 : encoder_fail_string(w, s, at);
}

/* Shortest "%.Ng" that reads back as the same double. */
static size_t format_double(double d, char *buf) {
  int prec;
  size_t n = 0, i;
  for (prec = 15; prec <= 17; prec++) {
    n = (size_t)snprintf(buf, 32, "%.*g", prec, d);
    for (i = 0; i < n; i++)
      if (buf[i] == ',') buf[i] = '.'; /* a locale with decimal commas */
    if (strtod(buf, NULL) == d) break;
  }
  return n;
}

/* A double that names exactly one integer (integral, |d| <= 2^53) as
 * that integer's digits, "-0" as "0"; 0 when it names none. */
static int format_integral(double d, char *buf, size_t *len) {
  if (d != floor(d) || fabs(d) > 9007199254740992.0) return 0;
  *len = (size_t)snprintf(buf, 32, "%.0f", d);
  if (strcmp(buf, "-0") == 0) { buf[0] = '0'; buf[1] = '\0'; *len = 1; }
  return 1;
}

int encoder_format_number(encoder *w, int idx, char *buf, size_t *len) {
  lua_State *L = w->L;
  double d;
#if TRUTO_HAS_INTEGERS
  if (lua_isinteger(L, idx)) {
    *len = (size_t)snprintf(buf, 32, "%lld", (long long)lua_tointeger(L, idx));
    return 0;
  }
#endif
  d = (double)lua_tonumber(L, idx);
  if (d != d) return encoder_fail(w, "is NaN, which JSON cannot carry");
  if (d == HUGE_VAL || d == -HUGE_VAL) return encoder_fail(w, "is infinite, which JSON cannot carry");
#if !TRUTO_HAS_INTEGERS
  /* Lua 5.1/LuaJIT: integral doubles that are exact read as integers */
  if (format_integral(d, buf, len)) return 0;
#endif
  *len = format_double(d, buf);
#if TRUTO_HAS_INTEGERS
  /* keep a float a float: 3.0 stays 3.0, not 3 */
  if (strspn(buf, "-0123456789") == *len) {
    buf[(*len)++] = '.';
    buf[(*len)++] = '0';
    buf[*len] = '\0';
  }
#endif
  return 0;
}

int encoder_format_text_number(encoder *w, int idx, char *buf, size_t *len) {
  lua_State *L = w->L;
  if (!lua_isinteger(L, idx) && format_integral((double)lua_tonumber(L, idx), buf, len)) return 0;
  return encoder_format_number(w, idx, buf, len);
}
