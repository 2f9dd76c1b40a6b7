-- keel:no-transaction
-- expect: drop-index
DROP INDEX CONCURRENTLY users_email_idx;
