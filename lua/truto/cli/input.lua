-- truto.cli.input: splits an import file into numbered records, CSV (RFC
-- 4180: a header row, quoted fields with "" for a quote, commas and line
-- breaks inside quotes, LF or CRLF) or JSON Lines (one JSON object a line).
--
-- Syntax only: what the columns and keys mean is truto.cli.rows' business.
-- Must never drop or merge a record silently: a record it cannot parse is
-- returned with a `problem`, and parsing resumes on the next line, so every
-- data record the user wrote gets a row number and a result.

local json = require "truto.cli.json"

local M = {}

local BOM = "\239\187\191"

-- "csv" or "jsonl": by the file's extension, else by its first character.
function M.detect(path, text)
  local ext = path and path:lower():match("%.(%w+)$")
  if ext == "csv" then return "csv" end
  if ext == "jsonl" or ext == "ndjson" or ext == "json" then return "jsonl" end
  if text:sub(1, 3) == BOM then text = text:sub(4) end
  local first = text:match("^%s*(.)")
  return first == "{" and "jsonl" or "csv"
end

-- The line number of every byte offset is the count of line breaks before
-- it; records remember where they start.
local function line_counter(text)
  local pos, line = 1, 1
  return function(upto)
    local _, n = text:sub(pos, upto - 1):gsub("\n", "")
    line = line + n
    pos = upto
    return line
  end
end

-- Reads one CSV record starting at pos. Returns cells, the position after
-- its line break, and a problem (or nil).
local function csv_record(text, pos)
  local cells, len = {}, #text
  local problem
  while true do
    if text:sub(pos, pos) == '"' then
      -- a quoted field: up to the quote not followed by another quote
      local parts, i = {}, pos + 1
      while true do
        local q = text:find('"', i, true)
        if not q then
          -- never closed: take the rest of this physical line as a broken record
          local eol = text:find("\n", pos, true)
          return cells, eol and eol + 1 or len + 1,
            "a quoted field is never closed (a \" is missing)"
        end
        parts[#parts + 1] = text:sub(i, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = '"'
          i = q + 2
        else
          pos = q + 1
          break
        end
      end
      cells[#cells + 1] = table.concat(parts)
      local after = text:sub(pos, pos)
      if after ~= "," and after ~= "\r" and after ~= "\n" and after ~= "" then
        problem = problem or ("text after the closing quote of field " .. #cells
          .. " (a field that starts with \" must end with \")")
        local stop = text:find("[,\r\n]", pos) or len + 1
        pos = stop
      end
    else
      local stop = text:find("[,\r\n]", pos) or len + 1
      local cell = text:sub(pos, stop - 1)
      if cell:find('"', 1, true) then
        problem = problem or ("a quote inside unquoted field " .. (#cells + 1)
          .. " (quote the whole field and double the quote: \"a \"\"b\"\" c\")")
      end
      cells[#cells + 1] = cell
      pos = stop
    end
    local sep = text:sub(pos, pos)
    if sep == "," then
      pos = pos + 1
    elseif sep == "\r" then
      return cells, text:sub(pos + 1, pos + 1) == "\n" and pos + 2 or pos + 1, problem
    elseif sep == "\n" then
      return cells, pos + 1, problem
    else
      return cells, len + 1, problem
    end
  end
end

-- M.csv(text) -> header | nil, records, header_problem
-- header: list of column names (nil for an empty file); records: list of
-- { row, line, cells (list of strings), problem }. Empty lines are not
-- records.
function M.csv(text)
  if text:sub(1, 3) == BOM then text = text:sub(4) end
  local line_of = line_counter(text)
  local pos, len = 1, #text
  local header, header_problem
  local records = {}
  while pos <= len do
    local c = text:sub(pos, pos)
    if c == "\n" then
      pos = pos + 1
    elseif c == "\r" then
      pos = pos + (text:sub(pos + 1, pos + 1) == "\n" and 2 or 1)
    else
      local line = line_of(pos)
      local cells, next_pos, problem = csv_record(text, pos)
      if not header then
        header = cells
        if problem then header_problem = "the header row is malformed: " .. problem end
      else
        records[#records + 1] = { row = #records + 1, line = line, cells = cells, problem = problem }
      end
      pos = next_pos
    end
  end
  return header, records, header_problem
end

-- M.jsonl(text) -> records: { row, line, value | problem }. Blank lines
-- are not records; every other line is one, parsed or not.
function M.jsonl(text)
  if text:sub(1, 3) == BOM then text = text:sub(4) end
  local records, line = {}, 0
  for raw in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
    line = line + 1
    local content = raw:gsub("\r$", "")
    if content:find("%S") then
      local record = { row = #records + 1, line = line }
      local value, why = json.decode(content)
      if value == nil then
        record.problem = "not valid JSON: " .. why
      elseif not json.is_object(value) then
        record.problem = "must be a JSON object with the group's fields"
      else
        record.value = value
      end
      records[#records + 1] = record
    end
  end
  return records
end

return M
