-- keel:no-transaction
-- expect: drop-database
DROP DATABASE analytics;
