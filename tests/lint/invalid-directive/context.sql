-- expect: invalid-directive
-- keel:no-transactions
SELECT 1;
