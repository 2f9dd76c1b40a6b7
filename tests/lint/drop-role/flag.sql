-- expect: drop-role
DROP ROLE reporting_ro;
-- expect: drop-role
DROP USER old_app;
