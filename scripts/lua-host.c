/*
 * scripts/lua-host.c - a stand-in for the lua5.4 interpreter that
 * scripts/check builds with clang -fsanitize=address,undefined, so the
 * sanitizer runtime lives in the executable: every Lua process of the suite
 * (busted, the mock's launcher, the CLI, helper subprocesses) is watched,
 * while the tools they start (sh, pgrep, mktemp, nginx) run plain. A
 * preloaded runtime (LD_PRELOAD) reaches those tools too, and some of them
 * (pgrep) hang under it.
 *
 * Does what the specs ask of lua5.4 and nothing more: `host script args`,
 * `host -e code`, `host -` (stdin), `-l name`, `-v`, `--`; the global `arg`
 * as lua.c builds it; LUA_INIT_5_4 / LUA_INIT; SIGINT raising
 * "interrupted!" inside Lua, as lua.c does. Never used outside make check.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static lua_State *global_L = NULL;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* As lua.c: on SIGINT, make Lua raise at the next instruction. */
static void on_interrupt(int sig) {
  signal(sig, SIG_DFL);
  lua_sethook(global_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below `nargs` arguments; reports an error on stderr. */
static int docall(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs, status;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  global_L = L;
  signal(SIGINT, on_interrupt);
  status = lua_pcall(L, nargs, 0, base);
  signal(SIGINT, SIG_DFL);
  lua_remove(L, base);
  if (status != LUA_OK) {
    fprintf(stderr, "lua5.4: %s\n", lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

static int run_chunk(lua_State *L, int status) {
  if (status == LUA_OK) return docall(L, 0);
  fprintf(stderr, "lua5.4: %s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
  return status;
}

static int run_init(lua_State *L) {
  const char *init = getenv("LUA_INIT_5_4");
  if (init == NULL) init = getenv("LUA_INIT");
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return run_chunk(L, luaL_loadfile(L, init + 1));
  return run_chunk(L, luaL_loadbuffer(L, init, strlen(init), "=LUA_INIT"));
}

/* arg[0] is the script, arg[-n..-1] what came before, arg[1..] after. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  const char *name = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
  int i, n = argc - script - 1, status = luaL_loadfile(L, name);
  if (status != LUA_OK) return run_chunk(L, status);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++) lua_pushstring(L, argv[script + i]);
  return docall(L, n);
}

static int main_chunk(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i, script = 0, status;
  luaL_openlibs(L);
  /* find the script: the first argument that is not an option */
  for (i = 1; i < argc; i++) {
    if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) { script = i; break; }
    if (strcmp(argv[i], "--") == 0) { script = i + 1 < argc ? i + 1 : 0; break; }
    if (strcmp(argv[i], "-e") == 0 || strcmp(argv[i], "-l") == 0) i++;
  }
  create_arg_table(L, argv, argc, script ? script : argc);
  if (run_init(L) != LUA_OK) { lua_pushboolean(L, 0); return 1; }
  for (i = 1; i < argc && (script == 0 || i < script); i++) {
    if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) {
      status = run_chunk(L, luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]), "=(command line)"));
      if (status != LUA_OK) { lua_pushboolean(L, 0); return 1; }
      i++;
    } else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) {
      lua_getglobal(L, "require");
      lua_pushstring(L, argv[i + 1]);
      if (docall(L, 1) != LUA_OK) { lua_pushboolean(L, 0); return 1; }
      i++;
    } else if (strcmp(argv[i], "-v") == 0) {
      printf("%s (sanitized host for make check)\n", LUA_COPYRIGHT);
    } else if (strcmp(argv[i], "--") == 0) {
      break;
    } else if (strcmp(argv[i], "-E") != 0 && strcmp(argv[i], "-W") != 0) {
      fprintf(stderr, "lua5.4 (check host): unsupported option '%s'\n", argv[i]);
      lua_pushboolean(L, 0);
      return 1;
    }
  }
  if (script && run_script(L, argv, argc, script) != LUA_OK) { lua_pushboolean(L, 0); return 1; }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int ok, status;
  if (L == NULL) {
    fprintf(stderr, "lua5.4: cannot create state: not enough memory\n");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, main_chunk);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = status == LUA_OK && lua_toboolean(L, -1);
  if (status != LUA_OK) fprintf(stderr, "lua5.4: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
