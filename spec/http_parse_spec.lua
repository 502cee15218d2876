-- spec/http_parse_spec.lua: core.http_response, the pure HTTP/1.x response
-- parser the ngx transport feeds with what its cosocket reads. No server
-- needed: the bytes are the input. Fed whole and one byte at a time, the
-- parser must give the same status, headers, body and keep-alive verdict.
local core = require "truto.core"

-- Feeds `bytes` in pieces of `step` bytes (then "" for the close when
-- `close` is set); returns phase, status, headers, body, keep_alive, or
-- nil, message, code.
local function parse(bytes, step, close, skip_body)
  local p = core.http_response(skip_body)
  local body, phase, message, code = {}, "head"
  local i = 1
  step = step or #bytes
  while i <= #bytes do
    phase, message, code = p:feed(bytes:sub(i, i + step - 1))
    if not phase then return nil, message, code end
    body[#body + 1] = p:take()
    i = i + step
  end
  if close then
    phase, message, code = p:feed("")
    if not phase then return nil, message, code end
    body[#body + 1] = p:take()
  end
  return phase, p:status(), p:headers(), table.concat(body), p:keep_alive(), p:content_length()
end

local GROUP = '{"id":"1001","name":"Engineering"}'
local CREATED = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
  .. #GROUP .. "\r\nRateLimit-Remaining: 7\r\n\r\n" .. GROUP

describe("core.http_response", function()
  it("reads a Content-Length answer: status, lower-case headers, body, reusable connection", function()
    for _, step in ipairs { #CREATED, 1, 7 } do
      local phase, status, headers, body, keep, length = parse(CREATED, step)
      assert.are.equal("done", phase)
      assert.are.equal(201, status)
      assert.are.same({ ["content-type"] = "application/json", ["content-length"] = tostring(#GROUP),
        ["ratelimit-remaining"] = "7" }, headers)
      assert.are.equal(GROUP, body)
      assert.is_true(keep)
      assert.are.equal(#GROUP, length)
    end
  end)

  it("reads a chunked answer and reports no Content-Length", function()
    local bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "5\r\n{\"id\"\r\n" .. "b\r\n:\"1001\", \"x\r\n" .. "2\r\n\"}\r\n" .. "0\r\n\r\n"
    for _, step in ipairs { #bytes, 1, 3 } do
      local phase, status, _, body, keep, length = parse(bytes, step)
      assert.are.equal("done", phase)
      assert.are.equal(200, status)
      assert.are.equal('{"id":"1001", "x"}', body)
      assert.is_true(keep)
      assert.is_nil(length)
    end
  end)

  it("reads an answer that ends when the server closes, and never keeps that connection", function()
    local bytes = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n" .. GROUP
    local p = core.http_response()
    assert.are.equal("body", p:feed(bytes))
    assert.are.equal("done", p:feed(""))
    assert.are.equal(GROUP, p:take())
    assert.is_false(p:keep_alive())
  end)

  it("skips a 100 Continue and answers with the final status and its headers only", function()
    local bytes = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n" .. CREATED
    local phase, status, headers, body = parse(bytes, 2)
    assert.are.equal("done", phase)
    assert.are.equal(201, status)
    assert.is_nil(headers["x-interim"])
    assert.are.equal(GROUP, body)
  end)

  it("joins repeated headers with a comma and trims values, as the curl transport does", function()
    local bytes = "HTTP/1.1 204 No Content\r\nVary: Accept\r\nvary:  Origin \t\r\nX-Empty:\r\n\r\n"
    local phase, status, headers, body, keep = parse(bytes)
    assert.are.equal("done", phase)
    assert.are.equal(204, status)
    assert.are.equal("Accept, Origin", headers.vary)
    assert.are.equal("", headers["x-empty"])
    assert.are.equal("", body)
    assert.is_true(keep)
  end)

  it("says 'head' until the headers are complete, then 'body', then 'done'", function()
    local p = core.http_response()
    assert.are.equal("head", p:feed("HTTP/1.1 200 OK\r\nContent-Len"))
    assert.is_nil(p:status())
    assert.are.same({}, p:headers())
    assert.are.equal("body", p:feed("gth: 4\r\n\r\nab"))
    assert.are.equal(200, p:status())
    assert.are.equal("ab", p:take())
    assert.are.equal("", p:take())
    assert.are.equal("done", p:feed("cd"))
    assert.are.equal("cd", p:take())
  end)

  it("marks a connection not reusable when bytes follow the answer", function()
    local p = core.http_response()
    assert.are.equal("done", p:feed(CREATED .. "HTTP/1.1 200 OK\r\n"))
    assert.is_false(p:keep_alive())
    p = core.http_response()
    assert.are.equal("done", p:feed(CREATED))
    assert.are.equal("done", p:feed("x"))
    assert.is_false(p:keep_alive())
  end)

  it("does not keep a connection the server says it will close", function()
    local bytes = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    local phase, _, _, _, keep = parse(bytes)
    assert.are.equal("done", phase)
    assert.is_false(keep)
    phase, _, _, _, keep = parse("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert.are.equal("done", phase)
    assert.is_false(keep)
  end)

  it("expects no body after a HEAD request, whatever Content-Length says", function()
    local phase, status, _, body = parse("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", nil, false, true)
    assert.are.equal("done", phase)
    assert.are.equal(200, status)
    assert.are.equal("", body)
  end)

  it("reports a close before the answer ended, and a close with no answer at all", function()
    local none, message, code = parse("", nil, true)
    assert.is_nil(none)
    assert.matches("empty reply", message)
    assert.are.equal("closed", code)
    none, message, code = parse("HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{\"id\"", 4, true)
    assert.is_nil(none)
    assert.matches("closed before the response was complete", message)
    assert.are.equal("closed", code)
    local cut
    cut, message, code = parse("HTTP/1.1 201 Cre", nil, true)
    assert.is_nil(cut)
    assert.matches("closed before the response was complete", message)
    assert.are.equal("closed", code)
  end)

  it("refuses bytes that are not HTTP, and keeps refusing", function()
    local p = core.http_response()
    local none, message, code = p:feed("SSH-2.0-OpenSSH_9.2\r\n")
    assert.is_nil(none)
    assert.matches("^malformed HTTP response", message)
    assert.are.equal("bad_status_line", code)
    local again, message2 = p:feed("HTTP/1.1 200 OK\r\n\r\n")
    assert.is_nil(again)
    assert.are.equal(message, message2)
  end)

  it("refuses a bad chunk size and a bad Content-Length", function()
    local none, _, code = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert.is_nil(none)
    assert.are.equal("bad_chunk", code)
    none, _, code = parse("HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n")
    assert.is_nil(none)
    assert.are.equal("bad_content_length", code)
  end)

  it("takes 256 KiB of status and header lines and refuses one byte more as too_large", function()
    -- "HTTP/1.1 200 OK\r\n" + "X-Big: ...\r\n" + "\r\n" = exactly LIMIT bytes
    local LIMIT = 262144
    local fixed = #"HTTP/1.1 200 OK\r\n" + #"X-Big: \r\n" + #"\r\n" + #"Content-Length: 0\r\n"
    local function answer(extra)
      return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Big: " .. ("a"):rep(LIMIT - fixed + extra)
        .. "\r\n\r\n"
    end
    for _, step in ipairs { 4096, 65536 } do
      local phase, status, headers = parse(answer(0), step)
      assert.are.equal("done", phase)
      assert.are.equal(200, status)
      assert.are.equal(LIMIT - fixed, #headers["x-big"])
      local none, message, code = parse(answer(1), step)
      assert.is_nil(none)
      assert.are.equal("too_large", code)
      assert.matches("262144 bytes", message)
    end
  end)

  it("counts 1xx interim answers in that limit, so endless 1xx heads stop", function()
    local interim = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    local p = core.http_response()
    local phase, code
    for _ = 1, math.ceil(262144 / #interim) + 1 do
      phase, _, code = p:feed(interim)
      if not phase then break end
      assert.are.equal("head", phase)
    end
    assert.is_nil(phase)
    assert.are.equal("too_large", code)
    -- a few of them before the answer are fine
    local ok, status, headers, body = parse(interim:rep(3) .. CREATED, 5)
    assert.are.same({ "done", 201, GROUP }, { ok, status, body })
    assert.is_nil(headers.link)
  end)

  it("refuses a line that never ends once it passes the limit, without holding more", function()
    local p = core.http_response()
    assert.are.equal("head", p:feed("HTTP/1.1 200 OK\r\nX-Endless: "))
    local phase, code
    for _ = 1, 100 do
      phase, _, code = p:feed(("b"):rep(16384))
      if not phase then break end
    end
    assert.is_nil(phase)
    assert.are.equal("too_large", code)
  end)

  it("refuses bytes that are not HTTP before a line ends", function()
    local p = core.http_response()
    local none, _, code = p:feed("SSH-2.0-OpenSSH")
    assert.is_nil(none)
    assert.are.equal("bad_status_line", code)
    assert.are.equal("head", core.http_response():feed("HTT"))
    assert.are.equal("head", core.http_response():feed("\r"))
  end)

  it("refuses a 101 upgrade, header lines without a colon, and chunk data longer than its size", function()
    local cases = {
      upgrade = { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" },
      bad_header = { "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n" },
      bad_chunk = { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" .. ("0"):rep(5000) },
      bad_content_length = { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab" },
      bad_status_line = { "HTTP/2 200\r\n\r\n" },
    }
    for expected, inputs in pairs(cases) do
      for _, bytes in ipairs(inputs) do
        local none, _, code = parse(bytes)
        assert.is_nil(none)
        assert.are.equal(expected, code)
      end
    end
  end)

  it("lets chunked win over Content-Length and then never keeps the connection", function()
    local bytes = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      .. "2\r\n{}\r\n0\r\nX-Trailer: t\r\n\r\n"
    for _, step in ipairs { #bytes, 1 } do
      local phase, _, headers, body, keep, length = parse(bytes, step)
      assert.are.same({ "done", "{}", false }, { phase, body, keep })
      assert.is_nil(length)
      assert.is_nil(headers["x-trailer"])
    end
  end)

  it("reads until close when the last transfer coding is not chunked", function()
    local p = core.http_response()
    assert.are.equal("body", p:feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz"))
    assert.are.equal("done", p:feed(""))
    assert.are.equal("zz", p:take())
    assert.is_false(p:keep_alive())
  end)

  it("expects no body after 204 and 304, and keeps HTTP/1.0 only with Connection: keep-alive", function()
    assert.are.equal("done", core.http_response():feed("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"))
    local phase, _, _, _, keep = parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n{}")
    assert.are.same({ "done", true }, { phase, keep })
    phase, _, _, _, keep = parse("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n{}")
    assert.are.same({ "done", false }, { phase, keep })
  end)

  it("joins a folded header line to its value with one space, and takes bare LF line ends", function()
    local phase, status, headers, body = parse(
      "HTTP/1.1 200 OK\nX-Folded: one\n  two\r\n\tthree\nContent-Length: 1\n\nz", 3)
    assert.are.same({ "done", 200, "one two three", "z" }, { phase, status, headers["x-folded"], body })
  end)

  it("leaves out header names of 128 bytes or more, as the curl transport does", function()
    local long = ("n"):rep(128)
    local _, _, headers = parse("HTTP/1.1 200 OK\r\n" .. long .. ": v\r\nShort: s\r\nContent-Length: 0\r\n\r\n")
    assert.is_nil(headers[long])
    assert.are.equal("s", headers.short)
  end)

  it("gives body pieces as they are parsed, so a large body never piles up inside", function()
    local size = 1024 * 1024
    local p = core.http_response()
    assert.are.equal("body", p:feed("HTTP/1.1 200 OK\r\nContent-Length: " .. size .. "\r\n\r\n"))
    local piece, total = ("z"):rep(16384), 0
    for _ = 1, size / #piece do
      p:feed(piece)
      total = total + #p:take()
    end
    assert.are.equal(size, total)
    assert.is_true(p:keep_alive())
  end)

  it("frees its buffers when collected (no growth over 40,000 more parsers)", function()
    local function churn(n)
      for i = 1, n do
        local p = core.http_response()
        p:feed(CREATED)
        p:headers()
        p:take()
        -- collected every 1,000: the heap's peak (and so the RSS) is the
        -- same each round however the collector's pace falls in a process
        if i % 1000 == 0 then collectgarbage() end
      end
      collectgarbage()
      collectgarbage()
    end
    -- the C buffers are malloc'd, outside the Lua heap: watch the RSS too
    local function rss_kb()
      local f = assert(io.open("/proc/self/status"))
      local text = f:read("*a")
      f:close()
      return tonumber(text:match("VmRSS:%s*(%d+)"))
    end
    -- two rounds reach the allocator's high-water mark; two more, as big,
    -- must not add to it (a leak would add more than 20 MB a round)
    churn(20000)
    churn(20000)
    local before, rss_before = collectgarbage("count"), rss_kb()
    churn(20000)
    churn(20000)
    local after, rss_after = collectgarbage("count"), rss_kb()
    assert.is_true(after - before < 256, ("Lua heap grew by %.0f KB"):format(after - before))
    local preload = os.getenv("LD_PRELOAD") or ""
    -- (make check's ASan pass runs an instrumented interpreter, no preload)
    if not (preload:find("asan", 1, true) or preload:find("vgpreload", 1, true)
        or os.getenv("ASAN_OPTIONS")) then
      -- (under ASan or valgrind freed blocks sit in a quarantine and RSS
      -- grows anyway; their leak checkers cover this case there)
      assert.is_true(rss_after - rss_before < 4096, ("RSS grew by %d KB"):format(rss_after - rss_before))
    end
    assert.matches("^truto.http_response %(done%)$", tostring((function()
      local p = core.http_response()
      p:feed(CREATED)
      return p
    end)()))
  end)

  it("raises on misuse: feeding something that is not a string", function()
    local p = core.http_response()
    assert.has_error(function() p:feed({}) end)
    assert.has_error(function() core.http_response().feed(nil, "x") end)
  end)
end)
