/*
 * random.c - core.uuid4 (see random.h). Random bytes come from the kernel
 * (getrandom) 4 KiB at a time: one system call per 255 keys instead of one
 * per key. A forked child must never hand out its parent's bytes (nginx
 * forks workers from a master that may have used the module): the page is
 * marked MADV_WIPEONFORK, so a child finds it zeroed — `filled` reads 0 —
 * and refills; where the kernel lacks that, the pool checks getpid() on
 * every key instead. The pool is an upvalue userdata, not a C global.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "class.h"
#include "random.h"

#define RANDOM_POOL_CLASS "truto.random_pool"

typedef struct random_page {
  unsigned filled;          /* nonzero once filled; 0 again in a forked child */
  size_t used;
  unsigned char bytes[4096 - 64];
} random_page;

typedef struct random_pool {
  random_page *page;        /* mmap'd, page-aligned */
  int wipes_on_fork;
  pid_t pid;                /* only read when !wipes_on_fork */
} random_pool;

static int fill_pool(random_pool *p) {
  size_t got = 0;
  random_page *pg = p->page;
  while (got < sizeof pg->bytes) {
    ssize_t n = getrandom(pg->bytes + got, sizeof pg->bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)n;
  }
  pg->used = 0;
  pg->filled = 1;
  p->pid = getpid();
  return 0;
}

static int random_pool_gc(lua_State *L) {
  random_pool *p = (random_pool *)class_check(L, 1, RANDOM_POOL_CLASS);
  if (p->page) munmap(p->page, sizeof *p->page);
  p->page = NULL;
  return 0;
}

static void push_random_pool(lua_State *L) {
  random_pool *p = (random_pool *)class_new(L, RANDOM_POOL_CLASS, sizeof *p);
  void *mem = mmap(NULL, sizeof(random_page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) luaL_error(L, "mmap failed");
  p->page = (random_page *)mem;
  p->page->filled = 0;
#ifdef MADV_WIPEONFORK
  p->wipes_on_fork = madvise(mem, sizeof(random_page), MADV_WIPEONFORK) == 0;
#else
  p->wipes_on_fork = 0;
#endif
  p->pid = 0;
}

/* core.uuid4() -> a random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
 * Raises only when the kernel gives no random bytes. */
static int core_uuid4(lua_State *L) {
  random_pool *pool = (random_pool *)lua_touserdata(L, lua_upvalueindex(1));
  random_page *pg = pool->page;
  unsigned char b[16];
  char out[37];
  static const char hex[] = "0123456789abcdef";
  int i, j = 0;
  if (!pg->filled || pg->used + sizeof b > sizeof pg->bytes ||
      (!pool->wipes_on_fork && pool->pid != getpid())) {
    if (fill_pool(pool) < 0) return luaL_error(L, "getrandom failed");
  }
  memcpy(b, pg->bytes + pg->used, sizeof b);
  memset(pg->bytes + pg->used, 0, sizeof b); /* never hand out the same bytes twice */
  pg->used += sizeof b;
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
    out[j++] = hex[b[i] >> 4];
    out[j++] = hex[b[i] & 15];
  }
  lua_pushlstring(L, out, 36);
  return 1;
}

void random_open(lua_State *L) {
  static const luaL_Reg metamethods[] = {
    { "__gc", random_pool_gc },
    { NULL, NULL }
  };
  class_register(L, RANDOM_POOL_CLASS, NULL, metamethods);
  push_random_pool(L);
  lua_pushcclosure(L, core_uuid4, 1);
  lua_setfield(L, -2, "uuid4");
}
