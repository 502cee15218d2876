/*
 * operation.c - one API operation compiled for building requests: a plan
 * (the Lua table truto.call makes from truto.api) in; (target, json) out,
 * or an invalid_argument naming the field.
 *
 * core.operation() compiles the plan once into C, so a build reads no Lua
 * table but the call's own: per side, the described fields sorted by name
 * and indexed by first byte (a key of the call is found by its bytes, no
 * re-interning), their type, minimum, enum values (sorted, with their
 * escaped forms), their names already escaped for the query and quoted
 * for JSON, and the required ones, marked as the encoder meets them. Every
 * array is allocated to the plan's size (no caps); every string points
 * into a Lua string the build closure keeps alive (its anchors upvalue),
 * or into memory the plan owns. The hints stay a Lua table, read only to
 * word a refusal. The encoder of the call's tables (encoder.c) is unchanged in
 * shape: keys sorted, values kept on the stack (then in the scratch
 * table), errors in key order.
 * Pure: no I/O, never runs Lua code (raw access only), never raises on
 * user input.
 *
 * plan = {
 *   path = "/unified/m/r",  after_id = "" (present when the path has {id}),
 *   body = false | side,  query = side,
 * }
 * side = { fields = { [name] = spec }, names = "a, b", hints = { [name] = text },
 *          required = { name, ... }, open = bool, account = "integrated_account_id" }
 * spec = { t = <core.FIELD_TYPES code>, values = { [v] = true }, expected = "a, b", min = n }
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "class.h"
#include "encode_json.h"
#include "encode_query.h"
#include "operation.h"

typedef enum {
  FT_STRING, FT_UUID, FT_ENUM, FT_BOOLEAN, FT_INTEGER, FT_STRING_ARRAY, FT_OBJECT, FT_FILTER,
  FT_OBJECT_ARRAY
} field_type;

static const char *const type_names[] = {
  "string", "uuid", "enum", "boolean", "integer", "string_array", "object", "filter",
  "object_array", NULL
};

/* Bytes the plan reads: a Lua string kept alive by the anchors, or memory
 * the plan owns. */
typedef struct bytes {
  const char *s;
  size_t len;
} bytes;

/* What the call gave for a field in the current build (see field_spec.mark). */
enum { GIVEN_NULL = 1, GIVEN_VALUE = 2 };

typedef struct field_spec {
  bytes name;
  bytes json_key;        /* "name": (empty when the name is not valid UTF-8: encoded per build) */
  bytes query_name;      /* the name percent-encoded */
  int type;              /* field_type; anything else is refused as an unknown type */
  int has_min;
  lua_Number min;
  bytes *values;         /* enum values, sorted bytewise */
  bytes *values_escaped; /* the same, percent-encoded */
  size_t nvalues;
  const char *expected;  /* "a, b" or NULL */
  unsigned mark;         /* the build that last saw the key ... */
  int given;             /* ... and what it held then: GIVEN_NULL or GIVEN_VALUE */
} field_spec;

typedef struct required_field {
  bytes name;
  field_spec *field;     /* NULL when not described (looked up in the table) */
} required_field;

typedef struct side_plan {
  int open;
  field_spec *fields;    /* sorted by name */
  size_t nfields;
  size_t *by_first;      /* 257 entries: the fields whose name starts with byte c
                            are fields[by_first[c] .. by_first[c + 1]); an empty
                            name is fields[0], before by_first[0] */
  const char *names;     /* "a, b" for messages, or NULL */
  int hints;             /* index of the hints table in the anchors, 0 for none */
  required_field *required;
  size_t nrequired;
  int has_account;
  bytes account;         /* the parameter the client's default fills */
  field_spec *account_field;
} side_plan;

/* The compiled operation and the scratch state one build uses (kept
 * between builds for its buffers). */
typedef struct builder {
  encoder w;
  strbuf prefix;
  strbuf target;
  strbuf json;
  bytes path, after_id;
  int has_id, has_body;
  side_plan body, query;
  unsigned build;        /* counts builds: field_spec.mark */
  field_spec **matched;  /* the spec of each top-level key, per build */
  size_t matched_cap;
  void **owned;          /* every allocation of the plan, freed by __gc */
  size_t nowned, owned_cap;
} builder;

#define BUILDER_MT "truto.builder"

/* Upvalues of the build and encode closures. */
#define UV_ARRAY_MT lua_upvalueindex(1)
#define UV_BUILDER lua_upvalueindex(2)
#define UV_ANCHORS lua_upvalueindex(3) /* the strings and hints the plan points into */
#define UV_SCRATCH lua_upvalueindex(4) /* kept across builds (encoder_end empties it) */

static int builder_gc(lua_State *L) {
  builder *b = (builder *)lua_touserdata(L, 1);
  size_t i;
  encoder_free(&b->w);
  strbuf_free(&b->prefix);
  strbuf_free(&b->target);
  strbuf_free(&b->json);
  for (i = 0; i < b->nowned; i++) free(b->owned[i]);
  free(b->owned);
  free(b->matched);
  b->owned = NULL;
  b->matched = NULL;
  b->nowned = b->owned_cap = b->matched_cap = 0;
  return 0;
}

static builder *push_builder(lua_State *L) {
  builder *b = (builder *)class_new(L, BUILDER_MT, sizeof *b);
  encoder_init(&b->w);
  strbuf_init(&b->prefix);
  strbuf_init(&b->target);
  strbuf_init(&b->json);
  return b;
}

/* ---- the top-level keys against the described fields ---- */

/* The spec of the field named s, or NULL. */
static field_spec *find_field(const side_plan *side, const char *s, size_t len) {
  size_t i, end;
  if (len == 0) return side->nfields && side->fields[0].name.len == 0 ? &side->fields[0] : NULL;
  if (!side->by_first) return NULL;
  i = side->by_first[(unsigned char)s[0]];
  end = side->by_first[(unsigned char)s[0] + 1];
  for (; i < end; i++) {
    const field_spec *f = &side->fields[i];
    /* Lua interns short strings: the same bytes are mostly the same string */
    if (f->name.s == s || (f->name.len == len && memcmp(f->name.s + 1, s + 1, len - 1) == 0))
      return &side->fields[i];
  }
  return NULL;
}

/* Sets b->matched[i] to the spec of the encoder's key first + i (NULL when
 * not described). */
static int match_fields(encoder *w, builder *b, const side_plan *side, size_t first, size_t count) {
  size_t i;
  if (count > b->matched_cap) {
    size_t cap = b->matched_cap ? b->matched_cap : 16;
    field_spec **m;
    while (cap < count) cap *= 2;
    m = (field_spec **)realloc(b->matched, cap * sizeof *m);
    if (m == NULL) return encoder_fail(w, "out of memory");
    b->matched = m;
    b->matched_cap = cap;
  }
  for (i = 0; i < count; i++) b->matched[i] = find_field(side, w->keys[first + i].s, w->keys[first + i].len);
  return 0;
}

/* Records what the call gave for a described field (for the required check). */
static void mark_given(builder *b, field_spec *f, lua_State *L, int idx) {
  f->mark = b->build;
  f->given = encoder_is_null(L, idx) ? GIVEN_NULL : GIVEN_VALUE;
}

/* ---- checks ---- */

static int fail_type(encoder *w, const char *name, int idx, const char *want) {
  return encoder_fail_field(w, name, "must be %s (got %s)", want, luaL_typename(w->L, idx));
}

/* Refuses a key the side does not describe: its hint when it has one,
 * else the names it takes. */
static int fail_unknown(encoder *w, const side_plan *side, const char *kind, const char *name, size_t len) {
  lua_State *L = w->L;
  char key[64];
  encoder_printable(key, sizeof key, name, len);
  if (side->hints) {
    lua_rawgeti(L, UV_ANCHORS, side->hints);
    lua_pushlstring(L, name, len);
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) {
      encoder_fail_field(w, key, "%s", lua_tostring(L, -1));
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 2);
  }
  return encoder_fail_field(w, key, "unknown %s (expected one of %s)", kind, side->names ? side->names : "none");
}

/* Whether the 8 bytes in x are all hex digits (either case): bytes below
 * 0x80 in 0x30-0x39, or, with bit 5 set (A-F to a-f), in 0x61-0x66. */
static int word_is_hex(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  uint64_t y = x | (ones * 0x20), digit, letter;
  if (x & high) return 0;
  /* (v + (0x80 - lo)) has the high bit set where v >= lo (no carries: v < 0x80) */
  digit = (x + ones * (0x80 - 0x30)) & ~(x + ones * (0x80 - 0x3a));
  letter = (y + ones * (0x80 - 0x61)) & ~(y + ones * (0x80 - 0x67));
  return ((digit | letter) & high) == high;
}

/* 8-4-4-4-12 hex digits: the dashes, then the 32 digits as 4 words. */
static int is_uuid(const char *s, size_t n) {
  char hex[32];
  uint64_t x;
  int i;
  if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return 0;
  memcpy(hex, s, 8);
  memcpy(hex + 8, s + 9, 4);
  memcpy(hex + 12, s + 14, 4);
  memcpy(hex + 16, s + 19, 4);
  memcpy(hex + 20, s + 24, 12);
  for (i = 0; i < 32; i += 8) {
    memcpy(&x, hex + i, 8);
    if (!word_is_hex(x)) return 0;
  }
  return 1;
}

/* The index of s among the enum values of f, or -1. */
static long find_value(const field_spec *f, const char *s, size_t n) {
  size_t lo = 0, hi = f->nvalues, i;
  /* Lua interns short strings: a few values are found by address first */
  if (f->nvalues <= 8)
    for (i = 0; i < f->nvalues; i++)
      if (f->values[i].s == s) return (long)i;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = encoder_compare_bytes(f->values[mid].s, f->values[mid].len, s, n);
    if (c == 0) return (long)mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/* A string, uuid or enum value at idx, checked against f (type `type`).
 * Returns 0, or the index + 1 of the enum value it is, or -1. */
static long check_string(encoder *w, const char *name, int type, const field_spec *f, int idx) {
  lua_State *L = w->L;
  size_t n;
  const char *s;
  char got[48];
  if (lua_type(L, idx) != LUA_TSTRING)
    return fail_type(w, name, idx, type == FT_UUID ? "a UUID string" : "a string");
  s = lua_tolstring(L, idx, &n);
  if (type == FT_UUID) {
    if (is_uuid(s, n)) return 0; /* ASCII without NUL: valid UTF-8 */
    encoder_printable(got, sizeof got, s, n);
    return encoder_fail_field(w, name, "must be a UUID like 62f44730-dd91-461e-bd6a-aedd9e0ad79d (got \"%s\")",
                           got);
  }
  if (type == FT_ENUM) {
    long at = find_value(f, s, n);
    if (at >= 0) return at + 1;
    encoder_printable(got, sizeof got, s, n);
    return encoder_fail_field(w, name, "must be one of %s (got \"%s\")", f->expected ? f->expected : "?", got);
  }
  w->depth = 0;
  encoder_push_key(w, name, strlen(name));
  if (encoder_check_string(w, s, n) < 0) return -1;
  encoder_pop(w);
  return 0;
}

/* Is the number at idx an integer, or a float that names exactly one
 * (integral, within 2^53: 1001.0 from lua-cjson on 5.4, 1e15)? */
static int names_one_integer(lua_State *L, int idx) {
  lua_Number n = lua_tonumber(L, idx);
  return lua_isinteger(L, idx) || (n == floor(n) && fabs(n) <= 9007199254740992.0);
}

/* The reason an integral float is still refused, for the message. */
static const char *beyond_2_53(lua_Number n) {
  return n == floor(n) && fabs(n) < HUGE_VAL ? " within 2^53 (beyond it a float names no single integer)" : "";
}

static int check_integer(encoder *w, const char *name, const field_spec *f, int idx) {
  lua_State *L = w->L;
  lua_Number n, min;
  if (lua_type(L, idx) != LUA_TNUMBER) return fail_type(w, name, idx, "a whole number");
  n = lua_tonumber(L, idx);
  if (!names_one_integer(L, idx))
    return encoder_fail_field(w, name, "must be a whole number%s (got %.17g)", beyond_2_53(n), (double)n);
  min = f->has_min ? f->min : -HUGE_VAL;
  if (n < min) return encoder_fail_field(w, name, "must be at least %.17g (got %.17g)", (double)min, (double)n);
  return 0;
}

/* A sequence of strings at idx (may be empty). With `query_name`, each
 * is also added to the query as name%5B%5D=item as it is checked. */
static int check_string_array(encoder *w, const char *name, int idx, const bytes *query_name) {
  lua_State *L = w->L;
  int shape;
  size_t first, count, i;
  if (lua_type(L, idx) != LUA_TTABLE) return fail_type(w, name, idx, "an array of strings");
  encoder_push_key(w, name, strlen(name));
  if (encoder_enter_table(w, idx, &shape, &first, &count) < 0) return -1;
  if (shape != SHAPE_ARRAY && count > 0) return encoder_fail(w, "must be an array of strings, not a table with keys");
  for (i = 1; i <= count; i++) {
    lua_rawgeti(L, idx, (int)i);
    encoder_push_index(w, (long long)i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      encoder_fail(w, "must be a string (got %s)", luaL_typename(L, -1));
      lua_pop(L, 1);
      return -1;
    } else {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      if (encoder_check_string(w, s, n) < 0) { lua_pop(L, 1); return -1; }
      if (query_name) {
        if (w->out.len) strbuf_addc(&w->out, '&');
        strbuf_add(&w->out, query_name->s, query_name->len);
        strbuf_add(&w->out, "%5B%5D=", 7);
        query_add_escaped(&w->out, s, n);
      }
    }
    lua_pop(L, 1);
    encoder_pop(w);
  }
  encoder_leave_table(w, first);
  encoder_pop(w);
  return 0;
}

/* A sequence of tables at idx (may be empty), each encoded as a JSON
 * object: emails = { { email = "a@b.c", is_primary = true } }. */
static int check_object_array(encoder *w, const char *name, int idx) {
  lua_State *L = w->L;
  int shape;
  size_t first, count, i;
  if (lua_type(L, idx) != LUA_TTABLE) return fail_type(w, name, idx, "an array of tables");
  encoder_push_key(w, name, strlen(name));
  if (encoder_enter_table(w, idx, &shape, &first, &count) < 0) return -1;
  if (shape != SHAPE_ARRAY && count > 0) return encoder_fail(w, "must be an array of tables, not a table with keys");
  for (i = 1; i <= count; i++) {
    int t;
    lua_rawgeti(L, idx, (int)i);
    t = lua_type(L, -1);
    encoder_push_index(w, (long long)i);
    if (t != LUA_TTABLE) {
      encoder_fail(w, "must be a table (got %s)", luaL_typename(L, -1));
      lua_pop(L, 1);
      return -1;
    }
    lua_pop(L, 1);
    encoder_pop(w);
  }
  encoder_leave_table(w, first);
  encoder_pop(w);
  return 0;
}

/* Checks the described value at idx against f (both sides). Returns 0,
 * or (enum) the index + 1 of the value, or -1. */
static long check_field(encoder *w, const char *name, const field_spec *f, int idx) {
  lua_State *L = w->L;
  switch (f->type) {
    case FT_STRING: case FT_UUID: case FT_ENUM:
      return check_string(w, name, f->type, f, idx);
    case FT_BOOLEAN:
      return lua_type(L, idx) == LUA_TBOOLEAN ? 0 : fail_type(w, name, idx, "a boolean");
    case FT_INTEGER:
      return check_integer(w, name, f, idx);
    case FT_STRING_ARRAY:
      return check_string_array(w, name, idx, NULL);
    case FT_OBJECT_ARRAY:
      return check_object_array(w, name, idx);
    case FT_OBJECT:
      return lua_type(L, idx) == LUA_TTABLE ? 0 : fail_type(w, name, idx, "a table");
    case FT_FILTER:
      if (lua_type(L, idx) == LUA_TSTRING) return check_string(w, name, FT_STRING, f, idx);
      return lua_type(L, idx) == LUA_TTABLE ? 0 : fail_type(w, name, idx, "a string or a table");
  }
  return encoder_fail_field(w, name, "has an unknown type in the description");
}

/* ---- the body ---- */

/* Enters the top-level table at idx and checks it has named keys. */
static int enter_top(encoder *w, int idx, size_t *first, size_t *count) {
  int shape;
  if (encoder_enter_table(w, idx, &shape, first, count) < 0) return -1;
  if (shape == SHAPE_ARRAY && *count > 0)
    return encoder_fail(w, "must be a table with named fields, not an array");
  if (shape == SHAPE_ARRAY) *count = 0;
  return 0;
}

/* Fails naming the first of side->required the call's table (at tbl, a
 * table or nil) lacks. Described fields were marked as the encoder met them;
 * `account` (the query only) is the stack index of the client's default,
 * which stands in for side->account. */
static int check_required(encoder *w, builder *b, const side_plan *side, int tbl, int account) {
  lua_State *L = w->L;
  size_t i;
  int has_default = account && lua_type(L, account) == LUA_TSTRING;
  for (i = 0; i < side->nrequired; i++) {
    const required_field *r = &side->required[i];
    int present = 0, absent = 1;
    if (r->field) {
      if (r->field->mark == b->build) {
        absent = 0;
        present = r->field->given == GIVEN_VALUE;
      }
    } else if (lua_istable(L, tbl)) {
      lua_pushlstring(L, r->name.s, r->name.len);
      lua_rawget(L, tbl);
      absent = lua_isnil(L, -1);
      present = !absent && !encoder_is_null(L, -1);
      lua_pop(L, 1);
    }
    /* the client's default stands in only where the call gave nothing
     * (truto.null there means "send none") */
    if (absent && has_default)
      present = side->has_account && encoder_compare_bytes(side->account.s, side->account.len, r->name.s, r->name.len) == 0;
    if (!present) {
      char name[64];
      encoder_printable(name, sizeof name, r->name.s, r->name.len);
      if (account) return encoder_fail_field(w, name, "is required (in the query, or as the client's %s)", name);
      return encoder_fail_field(w, name, "is required");
    }
  }
  return 0;
}

static int build_body(encoder *w, builder *b, int idx) {
  lua_State *L = w->L;
  const side_plan *side = &b->body;
  size_t first, count, i;
  encoder_begin(w, L, UV_ARRAY_MT, "body", UV_SCRATCH);
  if (lua_isnoneornil(L, idx))
    return encoder_fail_field(w, "body", "is required (a table of the fields to send)");
  if (!lua_istable(L, idx))
    return encoder_fail_field(w, "body", "must be a table (got %s)", luaL_typename(L, idx));
  if (enter_top(w, idx, &first, &count) < 0) return -1;
  if (match_fields(w, b, side, first, count) < 0) return -1;
  strbuf_addc(&w->out, '{');
  for (i = 0; i < count; i++) {
    encoder_key k = w->keys[first + i];
    field_spec *f = b->matched[i];
    int value, pushed;
    if (!f && !side->open) return fail_unknown(w, side, "body field", k.s, k.len);
    if (i > 0) strbuf_addc(&w->out, ',');
    if (f && f->json_key.len) {
      strbuf_add(&w->out, f->json_key.s, f->json_key.len);
    } else {
      if (encode_json_string(w, k.s, k.len) < 0) return -1;
      strbuf_addc(&w->out, ':');
    }
    value = encoder_value(w, k, &pushed);
    if (f) {
      mark_given(b, f, L, value);
      /* a string field's bytes are checked as the encoder writes them */
      if (!(f->type == FT_STRING && lua_type(L, value) == LUA_TSTRING) && check_field(w, k.s, f, value) < 0)
        return -1;
    }
    encoder_push_key(w, k.s, k.len);
    /* the description says array: an empty table is [] */
    if (f && f->type == FT_OBJECT_ARRAY && lua_rawlen(L, value) == 0) strbuf_add(&w->out, "[]", 2);
    else if (encode_json_value(w, value) < 0) return -1;
    encoder_pop(w);
    if (pushed) lua_pop(L, 1);
  }
  strbuf_addc(&w->out, '}');
  encoder_leave_table(w, first);
  return check_required(w, b, side, idx, 0);
}

/* ---- the query ---- */

/* Appends name=value, the name already escaped. */
static void add_escaped_pair(encoder *w, const bytes *name, const char *val, size_t vlen) {
  if (w->out.len) strbuf_addc(&w->out, '&');
  strbuf_add(&w->out, name->s, name->len);
  strbuf_addc(&w->out, '=');
  query_add_escaped(&w->out, val, vlen);
}

/* Appends name=value, both already escaped (or needing none). */
static void add_raw_pair(encoder *w, const bytes *name, const char *val, size_t vlen) {
  strbuf *o = &w->out;
  if (o->cap - o->len < name->len + vlen + 2 && !strbuf_grow(o, name->len + vlen + 2)) return;
  if (o->len) o->data[o->len++] = '&';
  memcpy(o->data + o->len, name->s, name->len);
  o->len += name->len;
  o->data[o->len++] = '=';
  memcpy(o->data + o->len, val, vlen);
  o->len += vlen;
}

/* One top-level parameter: `f` its spec (NULL on an open side). */
static int encode_query_field(encoder *w, builder *b, const char *name, size_t len, const field_spec *f, int idx) {
  lua_State *L = w->L;
  int type = f ? f->type : -1;
  long rc;
  /* an array of strings is checked and added in one pass */
  if (type == FT_STRING_ARRAY) return check_string_array(w, name, idx, &f->query_name);
  rc = f ? check_field(w, name, f, idx) : 0;
  if (rc < 0) return -1;
  switch (type) {
    case FT_ENUM: {
      const bytes *v = &f->values_escaped[rc - 1];
      add_raw_pair(w, &f->query_name, v->s, v->len);
      return 0;
    }
    case FT_UUID: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      add_raw_pair(w, &f->query_name, s, n); /* hex digits and dashes: nothing to escape */
      return 0;
    }
    case FT_STRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      add_escaped_pair(w, &f->query_name, s, n);
      return 0;
    }
    case FT_BOOLEAN:
      if (lua_toboolean(L, idx)) add_raw_pair(w, &f->query_name, "true", 4);
      else add_raw_pair(w, &f->query_name, "false", 5);
      return 0;
    case FT_OBJECT:
      if (lua_rawlen(L, idx) > 0)
        return encoder_fail_field(w, name, "must be a table of named parameters, not an array");
      break;
    default: /* integer, filter, and what an open side passes on */
      break;
  }
  /* the value under the escaped name: scalars as name=value, tables in
   * brackets */
  w->depth = 0;
  encoder_push_key(w, name, len);
  strbuf_reset(&b->prefix);
  if (f) {
    strbuf_add(&b->prefix, f->query_name.s, f->query_name.len);
  } else {
    if (query_check_key(w, name, len) < 0) return -1;
    query_add_escaped(&b->prefix, name, len);
  }
  if (encode_query_value(w, idx, &b->prefix) < 0) return -1;
  encoder_pop(w);
  return 0;
}

/* Adds the client's default account (at stack index `account`) as
 * name=value, when the side describes that parameter. */
static int add_account(encoder *w, const side_plan *side, int account) {
  const field_spec *f = side->account_field;
  long rc;
  if (!f) return 0;
  rc = check_string(w, f->name.s, f->type, f, account);
  if (rc < 0) return -1;
  if (f->type == FT_ENUM) {
    const bytes *v = &f->values_escaped[rc - 1];
    add_raw_pair(w, &f->query_name, v->s, v->len);
  } else {
    size_t n;
    const char *s = lua_tolstring(w->L, account, &n);
    if (f->type == FT_UUID) add_raw_pair(w, &f->query_name, s, n);
    else add_escaped_pair(w, &f->query_name, s, n);
  }
  return 0;
}

/* The query, keys in bytewise order, with the client's default account
 * slotted in where it sorts when the call gave none. */
static int build_query(encoder *w, builder *b, int idx, int account) {
  lua_State *L = w->L;
  const side_plan *side = &b->query;
  size_t first = 0, count = 0, i;
  int have_default = lua_type(L, account) == LUA_TSTRING && side->has_account;
  encoder_begin(w, L, UV_ARRAY_MT, "query", UV_SCRATCH);
  if (!lua_isnoneornil(L, idx)) {
    if (!lua_istable(L, idx))
      return encoder_fail_field(w, "query", "must be a table (got %s)", luaL_typename(L, idx));
    if (enter_top(w, idx, &first, &count) < 0) return -1;
  }
  if (match_fields(w, b, side, first, count) < 0) return -1;

  /* unknown keys first, so a typo is reported before anything else */
  if (!side->open)
    for (i = 0; i < count; i++)
      if (!b->matched[i]) {
        encoder_key k = w->keys[first + i];
        return fail_unknown(w, side, "query parameter", k.s, k.len);
      }
  for (i = 0; i <= count; i++) {
    if (have_default) {
      int before = i == count;
      if (!before) {
        encoder_key k = w->keys[first + i];
        int c = encoder_compare_bytes(side->account.s, side->account.len, k.s, k.len);
        if (c == 0) have_default = 0; /* the call's own wins */
        before = c < 0;
      }
      if (before && have_default) {
        if (add_account(w, side, account) < 0) return -1;
        have_default = 0;
      }
    }
    if (i == count) break;
    {
      encoder_key k = w->keys[first + i];
      field_spec *f = b->matched[i];
      int pushed, value = encoder_value(w, k, &pushed), null = encoder_is_null(L, value);
      if (f) {
        f->mark = b->build;
        f->given = null ? GIVEN_NULL : GIVEN_VALUE;
      }
      if (!null && encode_query_field(w, b, k.s, k.len, f, value) < 0) return -1;
      if (pushed) lua_pop(L, 1);
    }
  }
  if (check_required(w, b, side, idx, account) < 0) return -1;
  if (count) encoder_leave_table(w, first);
  return 0;
}

/* ---- the path ---- */

/* Appends the id as one percent-encoded path segment. */
static int add_id(encoder *w, strbuf *target, int idx) {
  lua_State *L = w->L;
  char buf[40];
  size_t n;
  const char *s;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    if (!names_one_integer(L, idx))
      return encoder_fail_field(w, "id", "must be a non-empty string or an integer%s (got %.17g)", beyond_2_53(v),
                             (double)v);
    if (encoder_format_text_number(w, idx, buf, &n) < 0) return -1;
    strbuf_add(target, buf, n);
    return 0;
  }
  if (lua_type(L, idx) != LUA_TSTRING)
    return encoder_fail_field(w, "id", "must be a non-empty string or an integer (got %s)", luaL_typename(L, idx));
  s = lua_tolstring(L, idx, &n);
  if (n == 0) return encoder_fail_field(w, "id", "must be a non-empty string or an integer (got \"\")");
  /* "." and ".." are dot-segments: clients and servers resolve them, so
   * the request would go to another path */
  if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
    return encoder_fail_field(w, "id", "cannot be \"%s\" (a path dot-segment)", s);
  query_add_escaped(target, s, n);
  return 0;
}

/* Pushes nil, field, message for the error recorded in w; returns 3. */
static int push_failure(lua_State *L, encoder *w) {
  lua_pushnil(L);
  lua_pushstring(L, w->failed ? w->field : "request");
  lua_pushstring(L, w->failed ? w->message : "request: out of memory");
  return 3;
}

/*
 * build(body, query, default_account, id [, origin]) -> target, json_or_nil
 *                                                     | nil, field, message
 * target is the path (with the id escaped into it) and "?query" when the
 * query is not empty, after `origin` when one is given (the client's
 * base_url: the whole URL in one string); json is nil when the operation
 * sends no body.
 */
static int operation_build(lua_State *L) {
  builder *b = (builder *)lua_touserdata(L, UV_BUILDER);
  encoder *w = &b->w;
  strbuf_reset(&b->target);
  if (lua_type(L, 5) == LUA_TSTRING) { /* copied before it leaves the stack */
    size_t origin_len;
    const char *origin = lua_tolstring(L, 5, &origin_len);
    strbuf_add(&b->target, origin, origin_len);
  }
  lua_settop(L, 4);
  w->L = L;
  w->failed = 0;
  if (++b->build == 0) { /* wrapped: no mark may look current */
    size_t i;
    for (i = 0; i < b->body.nfields; i++) b->body.fields[i].mark = 0;
    for (i = 0; i < b->query.nfields; i++) b->query.fields[i].mark = 0;
    b->build = 1;
  }
  strbuf_add(&b->target, b->path.s, b->path.len);
  if (b->has_id) {
    strbuf_addc(&b->target, '/');
    if (add_id(w, &b->target, 4) < 0) return push_failure(L, w);
    strbuf_add(&b->target, b->after_id.s, b->after_id.len);
  }

  /* the body first: its mistakes (a misplaced group_type) explain more */
  if (b->has_body) {
    strbuf swap;
    int rc = build_body(w, b, 1);
    encoder_end(w);
    if (rc < 0 || w->out.failed) return push_failure(L, w);
    /* keep the JSON: the query encoder writes into a buffer of its own */
    swap = b->json;
    b->json = w->out;
    w->out = swap;
    lua_settop(L, 4);
  }
  {
    int rc = build_query(w, b, 2, 3);
    encoder_end(w);
    if (rc < 0 || w->out.failed || b->prefix.failed) return push_failure(L, w);
  }
  if (w->out.len) {
    strbuf_addc(&b->target, '?');
    strbuf_add(&b->target, w->out.data, w->out.len);
  }
  if (b->target.failed || (b->has_body && b->json.failed)) {
    w->failed = 0;
    return push_failure(L, w);
  }
  lua_pushlstring(L, b->target.data, b->target.len);
  if (b->has_body) lua_pushlstring(L, b->json.data, b->json.len);
  else lua_pushnil(L);
  return 2;
}

/* ---- compiling the plan ---- */

/* Allocates memory the plan owns (freed by __gc); raises when out of it. */
static void *plan_alloc(lua_State *L, builder *b, size_t size) {
  void *p;
  if (b->nowned == b->owned_cap) {
    size_t cap = b->owned_cap ? b->owned_cap * 2 : 16;
    void **o = (void **)realloc(b->owned, cap * sizeof *o);
    if (o == NULL) luaL_error(L, "core.operation: out of memory");
    b->owned = o;
    b->owned_cap = cap;
  }
  p = calloc(1, size ? size : 1);
  if (p == NULL) luaL_error(L, "core.operation: out of memory");
  b->owned[b->nowned++] = p;
  return p;
}

/* Keeps the string at idx alive in the anchors table (at `anchors`) and
 * returns its bytes. */
static bytes anchor_string(lua_State *L, int anchors, int idx) {
  bytes out;
  lua_pushvalue(L, idx);
  out.s = lua_tolstring(L, -1, &out.len);
  lua_rawseti(L, anchors, (int)lua_rawlen(L, anchors) + 1);
  return out;
}

/* The bytes of s percent-encoded, owned by the plan. */
static bytes plan_escaped(lua_State *L, builder *b, const char *s, size_t n) {
  strbuf tmp;
  bytes out;
  char *p;
  strbuf_init(&tmp);
  query_add_escaped(&tmp, s, n);
  if (tmp.failed) { strbuf_free(&tmp); luaL_error(L, "core.operation: out of memory"); }
  p = (char *)plan_alloc(L, b, tmp.len);
  if (tmp.len) memcpy(p, tmp.data, tmp.len);
  out.s = p;
  out.len = tmp.len;
  strbuf_free(&tmp);
  return out;
}

/* "name": as JSON, owned by the plan; empty when the name is not valid
 * UTF-8 (the encoder then encodes it, and refuses it, per build). */
static bytes plan_json_key(lua_State *L, builder *b, const char *s, size_t n) {
  encoder w;
  bytes out = { NULL, 0 };
  encoder_init(&w);
  w.L = L;
  if (encode_json_string(&w, s, n) == 0 && !w.failed && !w.out.failed) {
    char *p = (char *)plan_alloc(L, b, w.out.len + 1);
    memcpy(p, w.out.data, w.out.len);
    p[w.out.len] = ':';
    out.s = p;
    out.len = w.out.len + 1;
  }
  encoder_free(&w);
  return out;
}

static int compare_fields(const void *a, const void *b) {
  const field_spec *x = (const field_spec *)a, *y = (const field_spec *)b;
  return encoder_compare_bytes(x->name.s, x->name.len, y->name.s, y->name.len);
}

static int compare_values(const void *a, const void *b) {
  const bytes *x = (const bytes *)a, *y = (const bytes *)b;
  return encoder_compare_bytes(x->s, x->len, y->s, y->len);
}

/* Fills f's enum values from the set at `set` (string keys with a true
 * value count, as the set is read with rawget). */
static void compile_values(lua_State *L, builder *b, field_spec *f, int set, int anchors) {
  size_t n = 0, i;
  lua_pushnil(L);
  while (lua_next(L, set)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_toboolean(L, -1)) n++;
    lua_pop(L, 1);
  }
  f->values = (bytes *)plan_alloc(L, b, n * sizeof *f->values);
  f->values_escaped = (bytes *)plan_alloc(L, b, n * sizeof *f->values_escaped);
  lua_pushnil(L);
  while (lua_next(L, set)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_toboolean(L, -1) && f->nvalues < n)
      f->values[f->nvalues++] = anchor_string(L, anchors, -2);
    lua_pop(L, 1);
  }
  qsort(f->values, f->nvalues, sizeof *f->values, compare_values);
  for (i = 0; i < f->nvalues; i++) f->values_escaped[i] = plan_escaped(L, b, f->values[i].s, f->values[i].len);
}

/* Compiles the named side at `idx` into `side`. */
static void compile_side(lua_State *L, builder *b, side_plan *side, int idx, int anchors) {
  size_t n = 0, i;
  int fields;
  lua_getfield(L, idx, "open");
  side->open = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "names");
  if (lua_type(L, -1) == LUA_TSTRING) side->names = anchor_string(L, anchors, -1).s;
  lua_pop(L, 1);
  lua_getfield(L, idx, "hints");
  if (lua_istable(L, -1)) {
    side->hints = (int)lua_rawlen(L, anchors) + 1;
    lua_rawseti(L, anchors, side->hints);
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "fields");
  fields = lua_gettop(L);
  if (lua_istable(L, fields)) {
    lua_pushnil(L);
    while (lua_next(L, fields)) {
      luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1), 1,
                    "plan fields must be name = spec tables");
      n++;
      lua_pop(L, 1);
    }
    side->fields = (field_spec *)plan_alloc(L, b, n * sizeof *side->fields);
    lua_pushnil(L);
    while (lua_next(L, fields) && side->nfields < n) {
      int spec = lua_gettop(L);
      field_spec *f = &side->fields[side->nfields++];
      f->name = anchor_string(L, anchors, spec - 1);
      lua_getfield(L, spec, "t");
      f->type = (int)lua_tointeger(L, -1);
      lua_getfield(L, spec, "min");
      f->has_min = lua_type(L, -1) == LUA_TNUMBER;
      f->min = f->has_min ? lua_tonumber(L, -1) : 0;
      lua_getfield(L, spec, "expected");
      if (lua_type(L, -1) == LUA_TSTRING) f->expected = anchor_string(L, anchors, -1).s;
      lua_getfield(L, spec, "values");
      if (lua_istable(L, -1)) compile_values(L, b, f, lua_gettop(L), anchors);
      lua_settop(L, spec - 1);
    }
    qsort(side->fields, side->nfields, sizeof *side->fields, compare_fields);
    side->by_first = (size_t *)plan_alloc(L, b, 257 * sizeof *side->by_first);
    {
      size_t c, at = side->nfields && side->fields[0].name.len == 0 ? 1 : 0;
      for (c = 0; c < 256; c++) {
        while (at < side->nfields && (unsigned char)side->fields[at].name.s[0] < c) at++;
        side->by_first[c] = at;
      }
      side->by_first[256] = side->nfields;
    }
    for (i = 0; i < side->nfields; i++) {
      field_spec *f = &side->fields[i];
      f->query_name = plan_escaped(L, b, f->name.s, f->name.len);
      f->json_key = plan_json_key(L, b, f->name.s, f->name.len);
    }
  }
  lua_settop(L, fields - 1);
  lua_getfield(L, idx, "account");
  if (lua_type(L, -1) == LUA_TSTRING) {
    side->has_account = 1;
    side->account = anchor_string(L, anchors, -1);
    side->account_field = find_field(side, side->account.s, side->account.len);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "required");
  if (lua_istable(L, -1)) {
    int list = lua_gettop(L);
    size_t count = lua_rawlen(L, list);
    side->required = (required_field *)plan_alloc(L, b, count * sizeof *side->required);
    for (i = 1; i <= count; i++) {
      required_field *r = &side->required[side->nrequired++];
      lua_rawgeti(L, list, (int)i);
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "plan required must be a list of names");
      r->name = anchor_string(L, anchors, -1);
      r->field = find_field(side, r->name.s, r->name.len);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* core.operation(plan) -> build function (see operation_build) */
static int operation_new(lua_State *L) {
  builder *b;
  int anchors;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "path");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "plan.path must be a string");
  lua_getfield(L, 1, "query");
  luaL_argcheck(L, lua_istable(L, -1), 1, "plan.query must be a table");
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));   /* 2: array_mt */
  b = push_builder(L);                     /* 3 */
  lua_newtable(L);                         /* 4: anchors */
  anchors = 4;
  lua_getfield(L, 1, "path");
  b->path = anchor_string(L, anchors, -1);
  lua_getfield(L, 1, "after_id");
  if (lua_type(L, -1) == LUA_TSTRING) {
    b->has_id = 1;
    b->after_id = anchor_string(L, anchors, -1);
  }
  lua_settop(L, 4);
  lua_getfield(L, 1, "body");
  if (lua_istable(L, -1)) {
    b->has_body = 1;
    compile_side(L, b, &b->body, 5, anchors);
  }
  lua_settop(L, 4);
  lua_getfield(L, 1, "query");
  compile_side(L, b, &b->query, 5, anchors);
  lua_settop(L, 4);
  /* the scratch table, its array part sized so that typical requests never
   * make Lua rehash it (emptied slots stay in the array part) */
  lua_createtable(L, 64, 0);
  lua_pushcclosure(L, operation_build, 4);
  return 1;
}

/* core.encode_json(value [, root]) -> json | nil, field, message */
static int operation_encode_json(lua_State *L) {
  builder *b = (builder *)lua_touserdata(L, UV_BUILDER);
  encoder *w = &b->w;
  lua_settop(L, 2);
  encoder_begin(w, L, UV_ARRAY_MT, luaL_optstring(L, 2, "value"), 0);
  if (encode_json_value(w, 1) < 0 || w->out.failed) return push_failure(L, w);
  lua_pushlstring(L, w->out.data, w->out.len);
  return 1;
}

void operation_open(lua_State *L) {
  static const luaL_Reg builder_meta[] = {
    { "__gc", builder_gc },
    { NULL, NULL }
  };
  int i, array_mt;
  class_register(L, BUILDER_MT, NULL, builder_meta);
  lua_getfield(L, -1, "array_mt"); /* json_markers_open set it */
  lua_insert(L, -2);
  array_mt = lua_gettop(L) - 1; /* stack: array_mt, module */
  lua_pushvalue(L, array_mt);
  lua_pushcclosure(L, operation_new, 1);
  lua_setfield(L, -2, "operation");
  lua_pushvalue(L, array_mt);
  push_builder(L);
  lua_pushcclosure(L, operation_encode_json, 2);
  lua_setfield(L, -2, "encode_json");
  lua_newtable(L);
  for (i = 0; type_names[i]; i++) {
    lua_pushinteger(L, i);
    lua_setfield(L, -2, type_names[i]);
  }
  lua_setfield(L, -2, "FIELD_TYPES");
  lua_remove(L, array_mt);
}
