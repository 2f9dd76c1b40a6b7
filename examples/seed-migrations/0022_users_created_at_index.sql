-- keel:no-transaction
--
-- 0022_users_created_at_index: seed 004's best practice "Add indexes
-- CONCURRENTLY on production". CREATE INDEX CONCURRENTLY cannot run inside a
-- transaction block, so this file says keel:no-transaction: keel runs its
-- statements one by one outside a transaction and records the migration
-- after the last one succeeded.

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_created_at ON users (created_at);
