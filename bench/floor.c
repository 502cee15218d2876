/*
 * bench/floor.c - the libcurl floor: the module's request (same URL, body
 * and header set) sent from a C loop with nothing else around it, so the
 * profile can tell libcurl's own cost from the module's. Built and run by
 * bench/profile.lua only; not part of the module. Must never retry, skip
 * a failed answer, or time anything but the requests.
 *
 *   floor easy URL BODY N WARMUP postfields|readfn   one easy handle, reused
 *   floor multi URL BODY N WARMUP CONCURRENCY        one multi handle
 * Headers come from argv after the mode's arguments ("Name: value" lines).
 * Prints "ok N SECONDS CPU_SECONDS"; exits 1 on any failure or non-201.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct upload {
  const char *data;
  size_t len, pos;
} upload;

static double monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
  return (double)clock() / CLOCKS_PER_SEC;
}

static size_t discard_body(char *data, size_t size, size_t n, void *ud) {
  (void)data;
  (void)ud;
  return size * n;
}

/* The module's body path since transfer.c moved off POSTFIELDS. */
static size_t read_body(char *buf, size_t size, size_t n, void *ud) {
  upload *u = (upload *)ud;
  size_t left = u->len - u->pos;
  if (left > size * n) left = size * n;
  memcpy(buf, u->data + u->pos, left);
  u->pos += left;
  return left;
}

static void configure(CURL *e, const char *url, struct curl_slist *headers, upload *u, int readfn) {
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  if (readfn) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u->len);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(e, CURLOPT_READDATA, u);
  } else {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, u->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u->len);
  }
}

static int check(CURL *e, CURLcode rc) {
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK || status != 201) {
    fprintf(stderr, "floor: %s, HTTP %ld\n", curl_easy_strerror(rc), status);
    return -1;
  }
  return 0;
}

static int run_easy(CURL *e, upload *u, long n) {
  long i;
  for (i = 0; i < n; i++) {
    u->pos = 0;
    if (check(e, curl_easy_perform(e)) < 0) return -1;
  }
  return 0;
}

static int run_multi(CURLM *m, CURL **pool, upload *ups, long concurrency, long n) {
  long started = 0, done = 0, i;
  int running, queued;
  for (i = 0; i < concurrency && started < n; i++, started++) {
    ups[i].pos = 0;
    curl_multi_add_handle(m, pool[i]);
  }
  while (done < n) {
    CURLMsg *msg;
    curl_multi_perform(m, &running);
    while ((msg = curl_multi_info_read(m, &queued)) != NULL) {
      CURL *e;
      upload *u;
      if (msg->msg != CURLMSG_DONE) continue;
      e = msg->easy_handle;
      if (check(e, msg->data.result) < 0) return -1;
      done++;
      curl_multi_remove_handle(m, e);
      if (started < n) {
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&u);
        u->pos = 0;
        curl_multi_add_handle(m, e);
        started++;
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
  }
  return 0;
}

int main(int argc, char **argv) {
  struct curl_slist *headers = NULL;
  const char *mode, *url, *body;
  long n, warmup, i;
  double t0, c0;
  int first_header = 7;
  if (argc < 7) {
    fprintf(stderr, "usage: floor easy|multi URL BODY N WARMUP postfields|readfn|CONCURRENCY [HEADER...]\n");
    return 2;
  }
  mode = argv[1];
  url = argv[2];
  body = argv[3];
  n = atol(argv[4]);
  warmup = atol(argv[5]);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  for (i = first_header; i < argc; i++) headers = curl_slist_append(headers, argv[i]);
  headers = curl_slist_append(headers, "Expect:");

  if (strcmp(mode, "easy") == 0) {
    upload u = { body, strlen(body), 0 };
    CURL *e = curl_easy_init();
    if (e == NULL) return 1;
    configure(e, url, headers, &u, strcmp(argv[6], "readfn") == 0);
    if (run_easy(e, &u, warmup) < 0) return 1;
    t0 = monotonic();
    c0 = cpu_seconds();
    if (run_easy(e, &u, n) < 0) return 1;
  } else if (strcmp(mode, "multi") == 0) {
    long concurrency = atol(argv[6]);
    CURLM *m = curl_multi_init();
    CURL **pool = calloc((size_t)concurrency, sizeof *pool);
    upload *ups = calloc((size_t)concurrency, sizeof *ups);
    if (m == NULL || pool == NULL || ups == NULL || concurrency < 1) return 1;
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, concurrency);
    for (i = 0; i < concurrency; i++) {
      ups[i].data = body;
      ups[i].len = strlen(body);
      pool[i] = curl_easy_init();
      if (pool[i] == NULL) return 1;
      configure(pool[i], url, headers, &ups[i], 0);
      curl_easy_setopt(pool[i], CURLOPT_PRIVATE, (char *)&ups[i]);
    }
    if (warmup > 0 && run_multi(m, pool, ups, concurrency, warmup) < 0) return 1;
    t0 = monotonic();
    c0 = cpu_seconds();
    if (run_multi(m, pool, ups, concurrency, n) < 0) return 1;
  } else {
    fprintf(stderr, "floor: unknown mode %s\n", mode);
    return 2;
  }
  printf("ok %ld %.6f %.6f\n", n, monotonic() - t0, cpu_seconds() - c0);
  return 0;
}
