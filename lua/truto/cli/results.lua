-- truto.cli.results: the results file of `truto-groups import`, JSON Lines,
-- one line per input row a run handles:
--
--   {"row":3,"account":"...","fingerprint":"...","id":"1003","idempotency_key":"...","line":4,"result":"created"}
--   {"row":4,...,"kind":"http","message":"...","result":"failed","status":400}
--   result: created | failed (nothing was created) | unknown (the group may
--   exist: --resume resends with the same key) | not_started (interrupted
--   before it was sent)
--   fingerprint: of the row's exact request and account (rows.fingerprint);
--   --resume refuses a row whose fingerprint changed since.
--
-- Each line is written whole with one write and flushed, so a killed run
-- leaves only complete lines (a torn last line is ignored when read back).
-- Must never hold a line back, and never write one for a row twice in a run.

local json = require "truto.cli.json"

local M = {}

-- Whether an error means the group may have been created anyway: the
-- request may have reached Truto (err.sent, which the module computes; an
-- error without it was never sent) and no definite answer came back.
function M.outcome_unknown(err)
  if err.sent ~= true then return false end
  local kind = err.kind
  if kind == "http" then return (err.status or 0) >= 500 and err.status ~= 503 end
  if kind == "rate_limited" or kind == "invalid_argument" then return false end
  return true
end

-- The line for one row (without the newline): {"row":N, then the other
-- fields in sorted order, so a person can read and grep it.
function M.line(fields)
  local row = fields.row
  fields.row = nil
  local encoded, why = json.encode(fields)
  fields.row = row
  if encoded and math.type(row) == "integer" then
    encoded = '{"row":' .. row .. (encoded == "{}" and "}" or ("," .. encoded:sub(2)))
  end
  if not encoded then
    -- a value the exact encoder refuses (it cannot happen for our fields,
    -- but the record must still say what happened to the row)
    encoded = assert(json.encode({ row = fields.row, idempotency_key = fields.idempotency_key,
      result = fields.result == "created" and "unknown" or fields.result, kind = "encode",
      message = "the result could not be written as JSON: " .. json.text(why) }))
  end
  return encoded
end

-- The fields of a row's line from a create's outcome. row: { row, line,
-- account, fingerprint }. A `cancelled` error (the run was stopped by a
-- signal) is `not_started` when nothing was sent, else `unknown`; both
-- with kind `interrupted`. stopped_by: the signal's name, for the message.
function M.from_outcome(row, key, group, err, stopped_by)
  local fields = { row = row.row, line = row.line, idempotency_key = key, account = row.account,
    fingerprint = row.fingerprint }
  if group ~= nil then
    fields.result = "created"
    local id = type(group) == "table" and group.id or nil
    if type(id) == "string" or math.type(id) == "integer" then
      fields.id = id
    else
      fields.message = "Truto answered 2xx without a group id"
    end
    return fields
  end
  if err.kind == "cancelled" then
    local why = "the run was stopped" .. (stopped_by and (" (SIG" .. stopped_by .. ")") or "")
    fields.kind = "interrupted"
    if err.sent then
      fields.result = "unknown"
      fields.message = "abandoned in flight when " .. why .. ": the group may exist; --resume"
        .. " resends it with this key, which cannot create it twice"
    else
      fields.result = "not_started"
      fields.message = "not sent: " .. why .. " first; --resume sends it"
    end
    return fields
  end
  fields.result = M.outcome_unknown(err) and "unknown" or "failed"
  fields.kind = err.kind
  fields.status = err.status
  fields.message = json.text(err.message or tostring(err))
  if err.attempts and err.attempts > 1 then fields.attempts = err.attempts end
  return fields
end

-- An open results file: lines are appended and flushed one by one.
local Writer = {}
Writer.__index = Writer

-- M.open(path, echo) -> writer | nil, message. echo: also print each line
-- on stdout; path nil: stdout only. A torn last line (no newline) is ended
-- first. writer.lines: the fields of every line written, in order.
function M.open(path, echo)
  if path == nil then return setmetatable({ echo = true, lines = {} }, Writer) end
  local f, why = io.open(path, "a+b")
  if not f then return nil, why end
  local size = f:seek("end")
  if size and size > 0 then
    f:seek("set", size - 1)
    local last = f:read(1)
    f:seek("end")
    if last ~= "\n" then f:write("\n") f:flush() end
  end
  f:setvbuf("full", 64 * 1024)
  return setmetatable({ file = f, echo = echo, lines = {} }, Writer)
end

function Writer:write(fields)
  local text = M.line(fields) .. "\n"
  self.lines[#self.lines + 1] = fields
  if self.file then
    assert(self.file:write(text))
    assert(self.file:flush())
  end
  if self.echo then
    io.stdout:write(text)
    io.stdout:flush()
  end
end

-- A line about the run rather than a row (its identity, the keys about to
-- be sent): to the file only, flushed, never echoed nor in writer.lines.
function Writer:note(fields)
  if not self.file then return end
  assert(self.file:write(M.line(fields), "\n"))
  assert(self.file:flush())
end

function Writer:close()
  if self.file then self.file:close() self.file = nil end
end

-- M.read(path, from) -> list of decoded lines (complete, valid ones only),
-- starting at byte offset `from` (default 0); nil when there is no file.
function M.read(path, from)
  local f = io.open(path, "rb")
  if not f then return nil end
  if from then f:seek("set", from) end
  local text = f:read("a")
  f:close()
  local lines = {}
  for raw in text:gmatch("([^\n]*)\n") do
    local value = json.decode(raw)
    if type(value) == "table" and math.type(value.row) == "integer" then
      lines[#lines + 1] = value
    end
  end
  return lines
end

-- M.last_by_row(lines) -> row -> its last line (the one that counts).
function M.last_by_row(lines)
  local by_row = {}
  for _, line in ipairs(lines or {}) do by_row[line.row] = line end
  return by_row
end

-- M.size(path) -> bytes in the file (0 when absent)
function M.size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local size = f:seek("end")
  f:close()
  return size
end

return M
