-- keel:no-transaction
-- IF EXISTS still drops it when it exists
-- expect: drop-database
DROP DATABASE IF EXISTS analytics;
