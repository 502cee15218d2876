/*
 * encoder.h - what the JSON and query encoders share: the encoder state (output
 * buffer, path of the value being encoded, cycle guard, key scratch), table
 * classification, scalar checks and number formatting.
 *
 * Encoders never raise and never call back into Lua (raw access only, no
 * metamethods): a bad value sets one error naming its path
 * (`remote_data.a[3]`) and the encoder unwinds with -1.
 */
#ifndef TRUTO_ENCODER_H
#define TRUTO_ENCODER_H

#include "compat.h"
#include "strbuf.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

#define ENCODER_MAX_DEPTH 64      /* nesting below a top-level field */
#define ENCODER_ERR_SIZE 1024
#define ENCODER_STACK_KEYS 128    /* open keys whose values stay on the Lua stack */

typedef struct encoder_seg {
  const char *key;  /* NULL for an array index */
  size_t klen;
  long long index;  /* 1-based, as Lua users count */
} encoder_seg;

typedef struct encoder_key {
  const char *s;   /* kept alive by the table being encoded (never changed during an encoding) */
  size_t len;
  int slot;        /* > 0: index in the scratch table of the key's value (the key
                      at slot + 1); < 0: minus the Lua stack index of the value
                      (a copy of the key just below it) */
} encoder_key;

typedef struct encoder {
  lua_State *L;
  strbuf out;
  int depth;
  encoder_seg path[ENCODER_MAX_DEPTH + 2];
  const void *open[ENCODER_MAX_DEPTH + 2];  /* tables being encoded: cycle guard */
  encoder_key *keys;                         /* stack of sorted object keys */
  size_t nkeys, keycap;
  int array_mt;                           /* stack index of truto.array's metatable, or 0 */
  int scratch;                            /* stack index of the values of open keys */
  int nvalues;                            /* slots used in scratch now */
  int maxvalues;                          /* slots used since encoder_begin */
  int stacked;                            /* open keys whose values are on the stack */
  const char *root;                       /* names the value itself in errors (depth 0) */
  char field[256];
  char message[ENCODER_ERR_SIZE];
  int failed;
} encoder;

enum encoder_shape { SHAPE_OBJECT, SHAPE_ARRAY };

/* Bytewise order of two byte strings (the order of object keys); most
 * keys differ in their first byte, so that is compared inline. */
static inline int encoder_compare_bytes(const char *a, size_t alen, const char *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c;
  if (n && a[0] != b[0]) return (unsigned char)a[0] < (unsigned char)b[0] ? -1 : 1;
  c = n ? memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return (alen > blen) - (alen < blen);
}

void encoder_init(encoder *w);
void encoder_free(encoder *w);
/* Starts an encoding. `scratch` is the stack index of a table that holds the
 * values of the keys of open tables (a Lua table, not the Lua stack: a wide
 * object must not run into the C stack limit of Lua 5.1 and LuaJIT); 0
 * pushes a new one, which the caller pops (or leaves below its results).
 * A kept scratch table is emptied by encoder_end. */
void encoder_begin(encoder *w, lua_State *L, int array_mt, const char *root, int scratch);

/* Drops the references the scratch table holds (so a kept one does not
 * keep the encoded values alive). */
void encoder_end(encoder *w);

/* The stack index of the value of key k of an open table: where the encoder
 * keeps it, or pushed from the scratch table (then *pushed is 1 and the
 * caller pops it). */
static inline int encoder_value(encoder *w, encoder_key k, int *pushed) {
  if (k.slot < 0) {
    *pushed = 0;
    return -k.slot;
  }
  lua_rawgeti(w->L, w->scratch, k.slot);
  *pushed = 1;
  return lua_gettop(w->L);
}

/* Records an error at the current path; always returns -1. */
int encoder_fail(encoder *w, const char *fmt, ...);
/* Records an error about a top-level field (no path below it). */
int encoder_fail_field(encoder *w, const char *field, const char *fmt, ...);

/* The path of the value being encoded: a key or an index deeper, or back. */
static inline void encoder_push_key(encoder *w, const char *key, size_t len) {
  encoder_seg *s = &w->path[w->depth++];
  s->key = key;
  s->klen = len;
  s->index = 0;
}

static inline void encoder_push_index(encoder *w, long long index) {
  encoder_seg *s = &w->path[w->depth++];
  s->key = NULL;
  s->klen = 0;
  s->index = index;
}

static inline void encoder_pop(encoder *w) { w->depth--; }

/*
 * Classifies the table at `idx`: an object (string keys, collected sorted
 * onto w->keys from *first, *count of them, each value kept in the scratch
 * table at keys[i].slot so no lookup by name is needed) or an array
 * (1..*count). Tables with a metatable other than truto.array's are
 * refused: a proxy's __index/__pairs would encode as {} (raw access only).
 * Enters the table (cycle and depth guard); pair with encoder_leave_table.
 * Returns 0 or -1 (error recorded).
 */
int encoder_enter_table(encoder *w, int idx, int *shape, size_t *first, size_t *count);
void encoder_leave_table(encoder *w, size_t first);

/* Copies n bytes of s into dst (cap >= 8) fit for a message: control
 * characters, quotes, backslashes and bytes that are not UTF-8 become '?';
 * a cut (at cap - 4 bytes, never inside a character) ends in "...". */
void encoder_printable(char *dst, size_t cap, const char *s, size_t n);

/* Checks a string is valid UTF-8 without NUL; 0 or -1 (error recorded). */
int encoder_check_string(encoder *w, const char *s, size_t n);

/* Records why s is refused at byte `at` (NUL or bad UTF-8); returns -1. */
int encoder_fail_string(encoder *w, const char *s, size_t at);

/* Formats the number at `idx` (integers exactly, floats shortest
 * round-trip); 0 or -1 for NaN and infinities. */
int encoder_format_number(encoder *w, int idx, char *buf, size_t *len);
/* The same for a path segment or a query value, where text has no float
 * type: an integral float within 2^53 (1001.0, as lua-cjson decodes every
 * number on 5.4; 1e15) is written as the integer's digits on every Lua. */
int encoder_format_text_number(encoder *w, int idx, char *buf, size_t *len);

/* Is the value at idx JSON null (truto.null, a NULL light userdata)? */
static inline int encoder_is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

#pragma GCC visibility pop

#endif
