DROP SCHEMA reporting;
CREATE SCHEMA reporting;
