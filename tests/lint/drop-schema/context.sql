CREATE SCHEMA scratch;
DROP SCHEMA scratch;
