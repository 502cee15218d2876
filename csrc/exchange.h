/*
 * exchange.h - the module's own HTTP/1.1 exchange on a connection libcurl
 * opened (CURLOPT_CONNECT_ONLY): the request bytes written here, exactly
 * as libcurl would write them, and the answer read with the module's own
 * parser (http_parse.c). libcurl still resolves, connects and owns the
 * socket; what it no longer does per request is build the request (7.88
 * prints every header a byte at a time) and run its transfer machinery.
 *
 * Taken only where the wire is known to be libcurl's to the byte: plain
 * http, no proxy, no redirects to follow, no sink, ordinary header lines
 * (exchange_write says no to the rest, and libcurl's own transfer runs).
 * Used by both libcurl transports (transport_curl.c blocks in
 * exchange_run; transport_multi.c drives the steps from its poll loop).
 */
#ifndef TRUTO_EXCHANGE_H
#define TRUTO_EXCHANGE_H

#include <curl/curl.h>

#include "compat.h"
#include "http_parse.h"
#include "strbuf.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* where one request is */
enum { X_IDLE, X_CONNECTING, X_SENDING, X_RECEIVING, X_DONE };

typedef struct exchange {
  CURL *conn;            /* the CONNECT_ONLY handle; NULL until needed */
  CURLM *multi;          /* the multi `conn` is added to (multi transport) */
  void *owner;           /* CURLOPT_PRIVATE of `conn` (multi transport) */
  int added;             /* `conn` is in `multi` */
  int open;              /* `conn` holds a connection this module may use */
  curl_socket_t fd;      /* its socket (valid while open) */
  int connects;          /* connections opened for this request */
  int uses;              /* answers the open connection carried */
  strbuf origin;         /* scheme://host:port the open connection is to */
  strbuf want;           /* the origin this request is for (NUL-terminated) */
  int state;
  strbuf out;            /* the request, headers and body */
  size_t out_off;        /* bytes of it written */
  http_response resp;
  size_t max_bytes;
  double started, timeout, connect_timeout, stall_timeout, last_move;
  /* the outcome when state is X_DONE and failed */
  int failed, sent, oom;
  const char *kind, *detail;
  char message[CURL_ERROR_SIZE + 200];
  char errbuf[CURL_ERROR_SIZE];
} exchange;

void exchange_init(exchange *x);
void exchange_cleanup(exchange *x);

/*
 * Writes the request into x->out when it can go this way: returns 1, 0 when
 * it cannot (libcurl's transfer takes it), -1 out of memory. `lines` holds
 * `nlines` NUL-terminated "Name: value" lines; body NULL sends none.
 */
int exchange_write(exchange *x, const char *method, const char *url, const char *target,
                   const char *lines, size_t nlines, const char *body, size_t body_len);

/* Starts the request written last (limits in seconds; 0 stall: none). */
void exchange_begin(exchange *x, double timeout, double connect_timeout, double stall,
                    size_t max_bytes);

/* The whole exchange, blocking (the single-request transport). */
void exchange_run(exchange *x);

/* Steps for a poll loop (the multi transport). x->multi must be set.
 * needs_connect: the request waits for a connection nobody is opening;
 * connect adds the connection's handle to x->multi (then wait for its
 * CURLMSG_DONE and call connected). events: what to poll x->fd for (0:
 * nothing now); io: after poll said `revents`; tick: timeouts; due: the
 * earliest time tick has something to do. */
int exchange_needs_connect(const exchange *x);
void exchange_connect(exchange *x);
void exchange_connected(exchange *x, CURLcode rc);
short exchange_events(const exchange *x);
void exchange_io(exchange *x, short revents);
void exchange_tick(exchange *x, double now);
double exchange_due(const exchange *x);

/* Pushes the outcome as transfer_finish does (3 or 5 values) and returns
 * the count; closes the connection unless it can carry the next request. */
int exchange_finish(lua_State *L, exchange *x);

/* Drops the connection (after a request given up mid-way). */
void exchange_close(exchange *x);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
