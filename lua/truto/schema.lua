-- truto.schema: the create operation of groups as one flat table (method,
-- path, body, query, misplaced, response, integrations) for readers that
-- only need that one call. A view of truto.api, never a second source:
-- every fact here is read from there.
local api = require "truto.api"

local groups = api.resources.groups
local create = groups.operations.create

return {
  method = create.method,
  path = create.path,
  body = create.body,
  query = create.query,
  misplaced = create.misplaced,
  response = groups.object,
  integrations = create.integrations,
}
