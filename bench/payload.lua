-- bench/payload.lua: the one typical group every benchmark row creates (a
-- Lua body and query, as a user of the module would pass them), and the
-- query of the list rows (with the client's integrated_account_id, the
-- account of `query`). Every other client sends the exact bytes the C core
-- builds from these tables, so all rows put the same requests on the wire.
-- Pure data: never add behaviour.
return {
  body = {
    name = "Platform Engineering",
    description = "Builds and runs the platform",
    remote_data = {
      cost_center = "CC-1042",
      manager_email = "ana.lima@example.com",
      tags = { "infra", "oncall" },
    },
  },
  query = {
    integrated_account_id = "7f3c2a9e-4b1d-4e8a-9c55-0d2f6b8e1a47",
    group_type = "team",
    truto_exclude_fields = { "remote_data" },
  },
  list_query = { limit = 100 },
  token = "bench-token",
}
