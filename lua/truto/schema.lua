-- truto.schema: the one description of POST /unified/user-directory/groups.
--
-- Pure data, readable by every Lua (5.1-5.4, LuaJIT) and by every reader:
-- the C core validates and encodes against it, the mock server enforces it,
-- the command-line tool checks per-integration rows with it, and the README
-- is written from it. Never put behaviour here, and never repeat these facts
-- elsewhere: read them from this table.
--
-- Types understood by the C core (csrc/request.c):
--   string        a Lua string (valid UTF-8, no NUL)
--   uuid          a string of the form 8-4-4-4-12 hex digits
--   enum          a string, one of `values`
--   boolean       true or false
--   string_array  a sequence of strings (may be empty)
--   object        a table encoded as nested JSON / nested brackets
return {
  method = "POST",
  path = "/unified/user-directory/groups",

  -- Request body (JSON object). Order is the documentation order.
  body = {
    { name = "name",        type = "string", doc = "Name of the group." },
    { name = "description", type = "string", doc = "Description of the group." },
    { name = "remote_data", type = "object",
      doc = "Passed as is to the remote API." },
  },

  -- Query parameters. `required` ones may come from the client's defaults.
  query = {
    { name = "integrated_account_id", type = "uuid", required = true,
      doc = "The integrated account to create the group in." },
    { name = "group_type", type = "enum", values = { "department", "group", "team" },
      doc = "Type of the group." },
    { name = "truto_response_format", type = "enum",
      values = { "unified", "raw", "normalized", "stream" },
      doc = "unified (default), raw, normalized or stream." },
    { name = "truto_ignore_remote_data", type = "boolean",
      doc = "Leave remote_data out of the response." },
    { name = "truto_exclude_fields", type = "string_array",
      doc = "Fields to leave out of the response." },
    { name = "remote_query", type = "object",
      doc = "Passed untouched to the remote API as bracketed query parameters." },
  },

  -- Keys people put in the wrong table, with the hint they get.
  misplaced = {
    body = {
      group_type = "is a query parameter, not a body field: pass it in the query table",
      integrated_account_id =
        "is a query parameter, not a body field: pass it in the query table (or set it on the client)",
    },
    query = {
      name = "is a body field, not a query parameter: pass it in the body table",
      description = "is a body field, not a query parameter: pass it in the body table",
      remote_data = "is a body field, not a query parameter: pass it in the body table",
    },
  },

  -- Response body fields (the bare group object).
  response = {
    { name = "id",           type = "string", required = true },
    { name = "name",         type = "string" },
    { name = "description",  type = "string" },
    { name = "group_type",   type = "enum", values = { "team", "department", "group" } },
    { name = "organization", type = "string" },
    { name = "created_at",   type = "string", format = "date-time" },
    { name = "updated_at",   type = "string", format = "date-time" },
    { name = "remote_data",  type = "object" },
  },

  -- Per-integration support, from the reference page. `query` and `body`
  -- list what the integration supports; `required_*` what it needs;
  -- `allowed` narrows an enum; `response` is what it answers with.
  integrations = {
    blackline = {
      label = "BlackLine",
      query = { "group_type" }, body = { "name" },
      required_query = { "group_type" }, required_body = { "name" },
      allowed = { group_type = { "team" } },
      response = { "id", "name", "group_type" },
    },
    coupa = {
      label = "Coupa",
      query = { "group_type" }, body = { "name", "description" },
      required_query = {}, required_body = {},
      allowed = {},
      response = { "id", "name", "description", "group_type", "created_at", "updated_at" },
    },
    ["files.com"] = {
      label = "Files.com",
      query = { "group_type" }, body = { "name", "description" },
      required_query = {}, required_body = {},
      allowed = {},
      response = { "id", "name", "description", "group_type" },
    },
    jira = {
      label = "Jira",
      query = {}, body = { "name" },
      required_query = {}, required_body = { "name" },
      allowed = {},
      response = { "id", "name" },
    },
  },
}
