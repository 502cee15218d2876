/*
 * strbuf.h - a growable byte buffer owned by a C object (never by the Lua
 * stack), so encoders can append without touching Lua and can be reused
 * across calls without a fresh allocation each time.
 * Must never raise: a failed allocation sets `failed` and later appends are
 * ignored; the caller checks `failed` once at the end.
 */
#ifndef TRUTO_STRBUF_H
#define TRUTO_STRBUF_H

#include <stddef.h>
#include <string.h>

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

typedef struct strbuf {
  char *data;
  size_t len, cap;
  int failed;
} strbuf;

void strbuf_init(strbuf *b);
void strbuf_free(strbuf *b);
int strbuf_grow(strbuf *b, size_t extra);

static inline void strbuf_reset(strbuf *b) { b->len = 0; b->failed = 0; }

static inline void strbuf_add(strbuf *b, const char *s, size_t n) {
  if (n == 0) return; /* also keeps NULL + 0 out of an empty buffer */
  if (b->cap - b->len < n && !strbuf_grow(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static inline void strbuf_addc(strbuf *b, char c) {
  if (b->cap == b->len && !strbuf_grow(b, 1)) return;
  b->data[b->len++] = c;
}

static inline void strbuf_adds(strbuf *b, const char *s) { strbuf_add(b, s, strlen(s)); }

#pragma GCC visibility pop

#endif
