/*
 * transfer.h - one HTTP exchange on a libcurl easy handle: the state its
 * callbacks fill (headers, body, caps, stall guard, sink) and the mapping of
 * its outcome to Lua values. Shared by the single-request transport
 * (transport_curl.c) and the concurrent one (transport_multi.c).
 */
#ifndef TRUTO_TRANSFER_H
#define TRUTO_TRANSFER_H

#include <curl/curl.h>

#include "compat.h"
#include "strbuf.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

typedef struct transfer {
  CURL *easy;
  /* the request's header list: nodes in one array over one text buffer,
   * both kept from request to request (no allocation per header) */
  struct curl_slist *headers;
  size_t header_cap;
  strbuf header_text;
  lua_State *L;          /* set for the duration of a perform, never kept */
  strbuf head, body;
  size_t max_bytes;
  int too_large;
  int sink;              /* stack index of the sink function, or 0 */
  int sink_failed;       /* the sink raised: its error is on the stack top */
  double stall_timeout, last_move;
  curl_off_t last_bytes;
  int stalled;
  /* the handle's own copy of the request body (CURLOPT_POSTFIELDS points
   * here, so a multi transfer outlives the Lua string) */
  strbuf upload;
  int requests_started;  /* copies of the request begun in this exchange */
  int got_response;      /* a status line answered the latest copy */
  int answered;          /* any status line came in this exchange (a hop of
                          * a followed redirect included): the request was
                          * delivered, whatever fails after */
  int interim;           /* the latest status line was a 1xx */
  int head_done;         /* the current answer's header block is complete */
  size_t head_total;     /* header bytes of the current answer, the 1xx
                          * interim answers before it included */
  int resend_refused;    /* libcurl wanted to re-send before any answer */
  int on_h2;             /* the latest copy went out on an HTTP/2 connection */
  int needs_reset;       /* libcurl re-sent a refused stream in this exchange:
                          * its retry counter, which it never clears between
                          * transfers, is reset (curl_easy_reset) before the
                          * next one */
  /* the per-client settings, applied again after a reset */
  char *ca_file, *proxy;
  int insecure;
  long http_version;     /* CURL_HTTP_VERSION_* */
  CURLSH *share;
  int head_too_large;    /* the headers alone passed TRANSFER_MAX_HEAD */
  int line_too_large;    /* libcurl refused one header line (over its own
                          * 100 KiB per line) */
  int url_refused;       /* libcurl refused the URL (over its 8 MB) */
  int direct;            /* no proxy: the request target may be given
                          * apart from the URL (origin-form) */
  strbuf origin;         /* scheme://host[:port] of the last such request */
  curl_off_t announced;  /* Content-Length of a refused too-large answer */
  char errbuf[CURL_ERROR_SIZE];
} transfer;

/* The most response-header bytes one answer may have, any 1xx interim
 * answers before it included; more is too_large. The same number as the
 * ngx transport's (README "Size limits"), and below libcurl's own 300 KB
 * so that this one fires first. */
#define TRANSFER_MAX_HEAD (256 * 1024)

/* Creates the easy handle with the per-client settings read from the
 * table at `config` (ca_file, insecure, proxy) and the share handle (may be
 * NULL). 0, or -1 when libcurl cannot make a handle. */
int transfer_init(transfer *t, lua_State *L, int config, CURLSH *share);

void transfer_cleanup(transfer *t);

/* Reads one request from the table at stack index `req`:
 *   { method, url, headers = { "Name: value", ... }, body, timeout,
 *     connect_timeout, max_response_bytes, stall_timeout, sink,
 *     follow_redirects }
 * (README "What request receives") and sets it on the handle. A nil body
 * sends none at all (no Content-Length); a string body, even "", is sent
 * with its length. with_sink: req.sink (a function, or nil) is left on the
 * stack top for the transfer to call; without, req.sink is not read and
 * the stack is left as it was. Raises an argument error naming the field
 * on misuse (a field of the wrong type, a header line that is not one). */
void transfer_prepare(lua_State *L, transfer *t, int req, int with_sink);

/* After the transfer ended with `rc`: frees per-request state and pushes
 * (headers: response_headers_push's table, filled when read)
 *   status, headers, body                         (3 values) or
 *   nil, kind, message, sent, which_timeout       (5 values).
 * Too many redirects give the last 3xx answer (its body is empty: libcurl
 * skips the bodies of redirects it follows). Returns the count. Re-raises
 * what a sink raised. */
int transfer_finish(lua_State *L, transfer *t, CURLcode rc);

/* Registers libcurl's one-time global init. */
void transfer_global_init(lua_State *L);

#pragma GCC visibility pop

#endif
