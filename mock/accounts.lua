-- mock.accounts: the integrated accounts the mock knows, each tied to an
-- integration key that some operation of truto.api lists in `integrations`.
--
-- Pure data. `name` is how specs refer to an account (mock helper's
-- m.accounts[name]); `state` is "active", "sandbox" (read-only: 405) or
-- "blocked" (503). Never describe an integration's fields here: those come
-- from truto.api.
return {
  { name = "coupa",         id = "62f44730-dd91-461e-bd6a-aedd9e0ad79d", integration = "coupa",     state = "active" },
  { name = "blackline",     id = "b1acb1ac-0000-4000-8000-000000000001", integration = "blackline", state = "active" },
  { name = "files.com",     id = "f11e5f11-0000-4000-8000-000000000002", integration = "files.com", state = "active" },
  { name = "jira",          id = "a1ba0000-0000-4000-8000-000000000003", integration = "jira",      state = "active" },
  { name = "asana",         id = "a5a4a000-0000-4000-8000-000000000004", integration = "asana",     state = "active" },
  { name = "coupa_sandbox", id = "5a4db0c5-0000-4000-8000-000000000005", integration = "coupa",     state = "sandbox" },
  { name = "coupa_blocked", id = "b10cb10c-0000-4000-8000-000000000006", integration = "coupa",     state = "blocked" },
}
