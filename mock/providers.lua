-- mock.providers: how each integration's own API names a resource's fields,
-- for truto_response_format=raw ("the unprocessed, raw response from the
-- remote API"): ["model/resource"][integration] = { unified = own name }.
--
-- Only the names that differ from the unified ones are listed; which fields
-- an integration answers with comes from truto.api, never from here.
-- Invented but plausible (no real provider was asked); specs may rely on
-- them only to tell raw from unified.
return {
  ["user-directory/groups"] = {
    blackline = { id = "groupId", name = "groupName", group_type = "groupType" },
    coupa = { created_at = "created-at", updated_at = "updated-at" },
    ["files.com"] = { description = "notes" },
    jira = { id = "groupId" },
  },
  ["user-directory/users"] = {
    jira = { id = "accountId", name = "displayName" },
  },
}
