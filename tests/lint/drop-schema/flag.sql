-- expect: drop-schema
DROP SCHEMA reporting;
