-- The master's list of pump owners a page at a time (pumppilot_store::Store::owner_page): owners
-- in username order read through an index by role, and each tenant's farmers counted through an
-- index by tenant and role, without reading any farmer's row.
CREATE INDEX accounts_role_username ON accounts (role, username);
CREATE INDEX accounts_admin_role ON accounts (admin_id, role);
