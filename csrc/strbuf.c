/*
 * strbuf.c - growth policy of strbuf (doubling, from 256 bytes).
 */
#include <stdlib.h>

#include "strbuf.h"

void strbuf_init(strbuf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

void strbuf_free(strbuf *b) {
  free(b->data);
  strbuf_init(b);
}

/* Makes room for `extra` more bytes; 0 (and `failed` set) when it cannot. */
int strbuf_grow(strbuf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->failed) return 0;
  if (extra > (size_t)-1 - b->len) { b->failed = 1; return 0; }
  need = b->len + extra;
  cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > (size_t)-1 / 2) { cap = need; break; }
    cap *= 2;
  }
  p = realloc(b->data, cap);
  if (p == NULL) { b->failed = 1; return 0; }
  b->data = p;
  b->cap = cap;
  return 1;
}
