/*
 * http_parse.h - an HTTP/1.x response parser as a Lua userdata, our own
 * (no library). For transports that do their own I/O (the nginx cosocket
 * transport): they feed it the bytes they read.
 * Must never do I/O or call into Lua while parsing.
 */
#ifndef TRUTO_HTTP_PARSE_H
#define TRUTO_HTTP_PARSE_H

#include <stdint.h>

#include "compat.h"
#include "strbuf.h"

/* The core's own names stay inside core.so: a host that exports the same
 * names (Neovim exports lua-cjson's strbuf_init) must never be called in
 * their place. Only luaopen_truto_core (core.c) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define HTTP_RESPONSE_MT "truto.http_response"

/* Status and header lines an answer may have, 1xx interim heads (and
 * chunked trailers) included: 256 KiB, the same on every transport. */
#define HTTP_MAX_HEADER_BYTES 262144

enum { HTTP_PHASE_HEAD, HTTP_PHASE_BODY, HTTP_PHASE_DONE, HTTP_PHASE_FAILED };

/* The parser's state. Fields the C API's callers read: phase, status,
 * has_length and content_length (once the head is in), body (the body
 * bytes so far), head (the final answer's status and header lines, each
 * ending "\r\n", when keep_head), code and error (when failed). */
typedef struct http_response {
  int skip_body;       /* the request was HEAD: no body follows any status */
  int keep_head;       /* keep the final head's lines in `head` */
  size_t max_line;     /* a head line longer than this fails as "line_too_large" (0: none) */
  int phase;
  int status;          /* of the final (non-1xx) answer; 0 until its head is complete */
  /* the head being read (reset for each 1xx interim head) */
  int head_started;    /* its status line was read */
  int head_status, minor;
  int conn_close, conn_keep_alive, te_seen, te_chunked, has_length;
  uint64_t content_length;
  size_t last_field;   /* offset in `fields` of the last header's record */
  int has_field;
  /* the body */
  int mode, chunk_state;
  uint64_t left;       /* bytes left: of the Content-Length body, or of the chunk */
  size_t head_room;    /* header bytes still allowed (HTTP_MAX_HEADER_BYTES at start) */
  size_t chunk_room;   /* bytes still allowed on the chunk-size line being read */
  int keep_alive;      /* the answer allows reuse (decided when it is done) */
  int extra;           /* bytes arrived after the answer ended */
  size_t fed;          /* bytes fed so far */
  strbuf line;         /* a line that arrived in pieces */
  strbuf fields;       /* finished headers: size_t nlen, size_t vlen, name, value */
  strbuf head;         /* the final head's lines (keep_head) */
  strbuf body;         /* body bytes not taken yet */
  char error[200];
  const char *code;    /* why it failed: see response_feed */
} http_response;

/* The C API, for the module's own HTTP/1.1 exchange (exchange.c).
 * init: a fresh parser (buffers empty); reset: ready for the next answer,
 * buffers kept (small ones) for reuse; free: releases the buffers.
 * feed: bytes read, or len 0 for "the peer closed"; returns the phase.
 * Never raises: a failed allocation shows as `failed` on a buffer
 * (http_response_oom). */
void http_response_init(http_response *r, int skip_body, int keep_head);
void http_response_reset(http_response *r, int skip_body);
void http_response_free(http_response *r);
int http_response_feed(http_response *r, const char *data, size_t len);
int http_response_oom(const http_response *r);
/* The answer is complete and the connection may carry another request. */
int http_response_reusable(const http_response *r);

/* Is c a token character (RFC 9110: header names, methods)? */
int http_is_token_char(unsigned char c);

/* Registers the parser's metatable. */
void http_parse_open(lua_State *L);

/* core.http_response([skip_body]) -> parser */
int http_parse_new(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
