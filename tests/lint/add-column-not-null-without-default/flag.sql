-- expect: add-column-not-null-without-default
ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;
