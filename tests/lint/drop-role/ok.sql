CREATE ROLE reporting_ro;
ALTER ROLE reporting_ro NOLOGIN;
