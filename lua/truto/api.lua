-- truto.api: the one description of the unified API calls this module makes.
--
-- Pure data, readable by every Lua (5.1-5.4, LuaJIT) and by every reader:
-- the C core validates and encodes against it (csrc/operation.c, through
-- truto.call), the mock server routes and enforces it, the command line
-- checks rows with it, and the README is written from it. Never put
-- behaviour here, and never repeat these facts elsewhere: read them here.
--
-- resources[name] = {      name: `resource` with - as _ (client.<name>, truto.<name>)
--   model, resource   the URL is /unified/{model}/{resource}[/{id}|/{method}]
--   object            the fields of the bare object the API answers with
--   operations[op] = {     op: a custom method's path segment with - as _
--     method          GET, POST, PATCH or DELETE
--     path            the path template: "{id}" is one percent-encoded segment
--     kind            read | write | delete: what may be retried (truto.retry)
--     answer          object (the bare object) | page (list's envelope) |
--                     wrapped ({ result = ... }, unwrapped) | id ({ id })
--     pages           true when `each` can follow next_cursor
--     body            the body fields (absent: the call sends no body)
--     query           the query parameters; `required` ones may come from the
--                     client (integrated_account_id)
--     misplaced       keys people put in the wrong table, with the hint
--     integrations    per integration: what it supports and requires
--   }
-- }
-- generic(model, resource) describes a resource that is not listed: the
-- common query parameters plus any others (`open_query`), any JSON object
-- as a body (`open_body`).
--
-- Types understood by the C core:
--   string        a Lua string (valid UTF-8, no NUL)
--   uuid          a string of the form 8-4-4-4-12 hex digits
--   enum          a string, one of `values`
--   boolean       true or false
--   integer       a whole number (`min` when given)
--   string_array  a sequence of strings (may be empty)
--   object        a table encoded as nested JSON / nested brackets
--   object_array  a sequence of tables, each a JSON object (empty: [])
--   filter        a string, or a table of operators (bracket syntax)

local M = {}

-- The Truto parameters every unified call takes.
local function common(formats)
  return {
    { name = "integrated_account_id", type = "uuid", required = true,
      doc = "The integrated account to use (or the client's integrated_account_id)." },
    { name = "truto_response_format", type = "enum", values = formats,
      doc = table.concat(formats, ", ") .. " (unified is the default)." },
    { name = "truto_ignore_remote_data", type = "boolean",
      doc = "Leave remote_data out of the response." },
    { name = "truto_exclude_fields", type = "string_array",
      doc = "Fields to leave out of the response." },
    { name = "remote_query", type = "object",
      doc = "Passed untouched to the remote API as bracketed query parameters." },
  }
end

local WRITE_FORMATS = { "unified", "raw", "normalized", "stream" }
local READ_FORMATS = { "unified", "raw", "normalized", "stream" }
local LIST_FORMATS = { "unified", "raw", "normalized", "stream", "debug" }

-- Appends the fields of `more` to a copy of `base`.
local function with(base, more)
  local out = {}
  for _, f in ipairs(base) do out[#out + 1] = f end
  for _, f in ipairs(more or {}) do out[#out + 1] = f end
  return out
end

local SUPER_QUERY = { name = "truto_super_query", type = "enum", values = { "apac", "wnam" },
  doc = "Read Truto's synced copy in that region instead of calling the provider." }

-- What `list` takes on every resource: pages, keys, the synced copy.
local PAGING = {
  { name = "limit", type = "integer", min = 1, doc = "Page size." },
  { name = "next_cursor", type = "string", doc = "The cursor of the page to fetch." },
  { name = "truto_key_by", type = "string",
    doc = "Answer result as an object keyed by this field instead of an array." },
  { name = "truto_ignore_limit", type = "boolean", doc = "Ignore limit (one page of everything)." },
  SUPER_QUERY,
}

local BODY_HINTS = {
  group_type = "is a query parameter, not a body field: pass it in the query table",
  integrated_account_id =
    "is a query parameter, not a body field: pass it in the query table (or set it on the client)",
}
local QUERY_HINTS = {
  name = "is a body field, not a query parameter: pass it in the body table",
  description = "is a body field, not a query parameter: pass it in the body table",
  remote_data = "is a body field, not a query parameter: pass it in the body table",
}

local GROUP_TYPE = { name = "group_type", type = "enum", values = { "department", "group", "team" },
  doc = "Type of the group." }

local GROUP_BODY = {
  { name = "name",        type = "string", doc = "Name of the group." },
  { name = "description", type = "string", doc = "Description of the group." },
  { name = "remote_data", type = "object", doc = "Passed as is to the remote API." },
}

-- Per-integration support for create, from the reference page. `query` and
-- `body` list what the integration supports; `required_*` what it needs;
-- `allowed` narrows an enum; `response` is what it answers with.
local CREATE_INTEGRATIONS = {
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
}

-- The fields every described object ends with.
local STAMPS = {
  { name = "created_at",  type = "string", format = "date-time" },
  { name = "updated_at",  type = "string", format = "date-time" },
  { name = "remote_data", type = "object" },
}

-- get: GET {path}/{id}, the bare object (also the synced copy).
local function get_op(path, misplaced, open_query)
  return { method = "GET", path = path .. "/{id}", kind = "read", answer = "object",
    query = with(common(READ_FORMATS), { SUPER_QUERY }), misplaced = misplaced, open_query = open_query }
end

local GROUPS_PATH = "/unified/user-directory/groups"

-- The body fields of a user, as Truto's unified user-directory Users
-- object names them (https://truto.one/docs/api-reference/unified-user-directory-api/users).
local USER_BODY = {
  { name = "first_name",  type = "string", doc = "First name." },
  { name = "last_name",   type = "string", doc = "Last name." },
  { name = "name",        type = "string", doc = "Full name." },
  { name = "title",       type = "string", doc = "Job title." },
  { name = "username",    type = "string", doc = "User name." },
  { name = "emails",      type = "object_array",
    doc = "{ { email = ..., type = ..., is_primary = true }, ... } (required by Jira)." },
  { name = "phones",      type = "object_array", doc = "{ { number = ..., extension = ..., type = ... }, ... }." },
  { name = "roles",       type = "object_array", doc = "{ { id = ..., name = ... }, ... }." },
  { name = "remote_data", type = "object", doc = "Passed as is to the remote API." },
}

-- A query hint for each body field (people put them in the wrong table).
local function body_field_hints(fields)
  local hints = {}
  for _, f in ipairs(fields) do
    hints[f.name] = "is a body field, not a query parameter: pass it in the body table"
  end
  return hints
end
local USER_QUERY_HINTS = body_field_hints(USER_BODY)
local ACCOUNT_HINT = { integrated_account_id = BODY_HINTS.integrated_account_id }

local USERS_PATH = "/unified/user-directory/users"

M.resources = {
  groups = {
    model = "user-directory", resource = "groups",
    object = with({
      { name = "id",           type = "string", required = true },
      { name = "name",         type = "string" },
      { name = "description",  type = "string" },
      { name = "group_type",   type = "enum", values = { "team", "department", "group" } },
      { name = "organization", type = "string" },
    }, STAMPS),
    operations = {
      list = {
        method = "GET", path = GROUPS_PATH, kind = "read", answer = "page", pages = true,
        query = with(common(LIST_FORMATS), with(PAGING, {
          { name = "name", type = "string", doc = "Only groups with this name." },
          { name = "group_type", type = "enum", values = { "department", "group", "team", "product" },
            doc = "Only groups of this type." },
          { name = "organization_id", type = "string", doc = "Only groups of this organization." },
          { name = "sort_by", type = "enum", values = { "created_at", "id", "name" },
            doc = "Order of the result." },
          { name = "created_at", type = "filter",
            doc = "A date, or a range such as { gte = \"2024-01-01T00:00:00Z\" }." },
          { name = "updated_at", type = "filter", doc = "As created_at." },
          { name = "user_id", type = "string", doc = "Only groups this user belongs to." },
        })),
        misplaced = { query = QUERY_HINTS },
        integrations = {
          asana = { label = "Asana", required_query = { "organization_id" } },
        },
      },
      get = get_op(GROUPS_PATH, { query = QUERY_HINTS }),
      create = {
        method = "POST", path = GROUPS_PATH, kind = "write", answer = "object",
        body = GROUP_BODY,
        query = with(common(WRITE_FORMATS), { GROUP_TYPE }),
        misplaced = { body = BODY_HINTS, query = QUERY_HINTS },
        integrations = CREATE_INTEGRATIONS,
      },
      update = {
        method = "PATCH", path = GROUPS_PATH .. "/{id}", kind = "write", answer = "object",
        body = GROUP_BODY,
        query = with(common(WRITE_FORMATS), { GROUP_TYPE }),
        misplaced = { body = BODY_HINTS, query = QUERY_HINTS },
      },
      delete = {
        method = "DELETE", path = GROUPS_PATH .. "/{id}", kind = "delete", answer = "id",
        query = with(common(WRITE_FORMATS), { GROUP_TYPE }),
        misplaced = { query = QUERY_HINTS },
        integrations = {
          blackline = { label = "BlackLine", required_query = { "group_type" },
            allowed = { group_type = { "team" } } },
        },
      },
      remove_user = {
        method = "POST", path = GROUPS_PATH .. "/remove-user", kind = "write", answer = "wrapped",
        body = {
          { name = "group_id", type = "string", required = true, doc = "The group." },
          { name = "user_id", type = "string", required = true, doc = "The user to remove from it." },
          { name = "remote_data", type = "object", doc = "Passed as is to the remote API." },
        },
        query = common(WRITE_FORMATS),
        misplaced = { body = { integrated_account_id = BODY_HINTS.integrated_account_id } },
      },
    },
  },

  -- Users of the user directory: CRUD and the `downgrade` custom method.
  users = {
    model = "user-directory", resource = "users",
    object = with({
      { name = "id",                type = "string", required = true },
      { name = "external_id",       type = "string" },
      { name = "identifiers",       type = "object" },
      { name = "first_name",        type = "string" },
      { name = "last_name",         type = "string" },
      { name = "title",             type = "string" },
      { name = "name",              type = "string" },
      { name = "username",          type = "string" },
      { name = "emails",            type = "object_array" },
      { name = "phones",            type = "object_array" },
      -- a provider's own value when it maps to none of these
      { name = "status",            type = "enum", values = { "active", "inactive", "deleted", "invited" } },
      { name = "is_email_verified", type = "boolean" },
      { name = "is_2fa_enabled",    type = "boolean" },
      { name = "roles",             type = "object_array" },
    }, STAMPS),
    operations = {
      -- the filters differ per integration: passed on as given
      list = {
        method = "GET", path = USERS_PATH, kind = "read", answer = "page", pages = true,
        query = with(common(LIST_FORMATS), PAGING), open_query = true,
      },
      get = get_op(USERS_PATH, { query = USER_QUERY_HINTS }),
      create = {
        method = "POST", path = USERS_PATH, kind = "write", answer = "object",
        body = with(USER_BODY, {
          { name = "description", type = "string", doc = "Description of the user (Files.com)." },
        }),
        query = with(common(WRITE_FORMATS), {
          { name = "organization_id", type = "string", doc = "The organization (required by Cisco Meraki)." },
          { name = "workspace_id", type = "string", doc = "The workspace (required by Cisco Meraki)." },
        }),
        misplaced = { body = ACCOUNT_HINT, query = USER_QUERY_HINTS },
        integrations = {
          jira = { label = "Jira", required_body = { "emails" } },
        },
      },
      update = {
        method = "PATCH", path = USERS_PATH .. "/{id}", kind = "write", answer = "object",
        body = USER_BODY,
        query = common(WRITE_FORMATS),
        misplaced = { body = ACCOUNT_HINT, query = USER_QUERY_HINTS },
      },
      delete = {
        method = "DELETE", path = USERS_PATH .. "/{id}", kind = "delete", answer = "id",
        query = common(WRITE_FORMATS),
        misplaced = { query = USER_QUERY_HINTS },
      },
      -- Takes a user down to a lesser license or role. The parameters are
      -- query parameters; Segment also wants them in the body.
      downgrade = {
        method = "POST", path = USERS_PATH .. "/downgrade", kind = "write", answer = "wrapped",
        body = {
          { name = "user_id", type = "string", doc = "The user (Segment)." },
          { name = "role_id", type = "string", doc = "The role to give (Segment)." },
          { name = "workspace_id", type = "string", doc = "The workspace (Segment)." },
          { name = "remote_data", type = "object", doc = "Passed as is to the remote API." },
        },
        query = with(common(WRITE_FORMATS), {
          { name = "user_id", type = "string", required = true, doc = "The user to downgrade." },
          { name = "license_id", type = "string", doc = "The license (required by PagerDuty)." },
          { name = "role_id", type = "string", doc = "The role to give (required by PagerDuty, Salesforce, Segment)." },
          { name = "workspace_id", type = "string", doc = "The workspace (required by Segment)." },
        }),
        misplaced = { body = ACCOUNT_HINT },
        integrations = {
          pagerduty = { label = "PagerDuty", required_query = { "license_id", "role_id" } },
          salesforce = { label = "Salesforce", required_query = { "role_id" } },
          segment = { label = "Segment", required_query = { "role_id", "workspace_id" },
            required_body = { "user_id", "role_id", "workspace_id" } },
        },
      },
    },
  },
}

-- M.generic(model, resource) -> a resource description for any unified
-- resource that is not listed above: the common parameters are checked,
-- any other query parameter is passed on, and a body is any JSON object.
function M.generic(model, resource)
  local path = "/unified/" .. model .. "/" .. resource
  return {
    model = model, resource = resource, generic = true,
    operations = {
      list = { method = "GET", path = path, kind = "read", answer = "page", pages = true,
        query = with(common(LIST_FORMATS), PAGING), open_query = true },
      get = get_op(path, nil, true),
      create = { method = "POST", path = path, kind = "write", answer = "object",
        query = common(WRITE_FORMATS), open_query = true, open_body = true },
      update = { method = "PATCH", path = path .. "/{id}", kind = "write", answer = "object",
        query = common(WRITE_FORMATS), open_query = true, open_body = true },
      delete = { method = "DELETE", path = path .. "/{id}", kind = "delete", answer = "id",
        query = common(WRITE_FORMATS), open_query = true },
    },
  }
end

-- M.custom(model, resource, method) -> the operation of a custom method
-- (POST /unified/{model}/{resource}/{method}, result unwrapped).
function M.custom(model, resource, method)
  return { method = "POST", path = "/unified/" .. model .. "/" .. resource .. "/" .. method,
    kind = "write", answer = "wrapped", query = common(WRITE_FORMATS), open_query = true,
    open_body = true }
end

-- M.find(model, resource) -> the listed description, or nil.
function M.find(model, resource)
  for _, r in pairs(M.resources) do
    if r.model == model and r.resource == resource then return r end
  end
  return nil
end

return M
