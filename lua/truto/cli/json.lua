-- truto.cli.json: the truto-groups command's JSON rules, on the C core's
-- decoder and encoder (core.json_decode, truto.json_encode): no JSON code
-- of its own.
--
-- decode() is for what a user writes (input files, --remote-data) and what
-- the command wrote itself (results files): strictly valid UTF-8, no
-- repeated keys, at most 100 levels deep, arrays marked with truto.array
-- (an empty one stays an array when sent), null as truto.null, and every
-- integer exact: a Lua integer up to 64 bits on 5.3+ (2^53 on 5.1, 5.2 and
-- LuaJIT, whose numbers are doubles), refused beyond with a message.
-- Must never round a number silently, or turn one into a string.

local core = require "truto.core"

local M = {}

local null, json_decode, utf8_check = core.null, core.json_decode, core.utf8_check

local RULES = { max_depth = 100, duplicate_keys = false, mark_arrays = true, big_integers = "integer" }

-- M.decode(text) -> value | nil, message. The whole text must be one value
-- (surrounding whitespace allowed).
function M.decode(text)
  local valid, bad = utf8_check(text)
  if not valid then return nil, "invalid UTF-8 at byte " .. bad end
  return json_decode(text, RULES)
end

-- M.encode(value) -> json | nil, message
M.encode = require("truto").json_encode

-- True when v is a decoded JSON object (a table that is not an array).
function M.is_object(v)
  return type(v) == "table" and v ~= null and getmetatable(v) == nil
end

M.null = null

-- M.text(s) -> s with every invalid UTF-8 byte replaced by U+FFFD, so any
-- message (a server's, a file's) can go into a JSON line.
function M.text(s)
  s = tostring(s)
  local out, i = {}, 1
  while true do
    local valid, bad = utf8_check(s, i)
    if valid then
      out[#out + 1] = s:sub(i)
      return table.concat(out)
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\239\191\189"
    i = bad + 1
  end
end

return M
