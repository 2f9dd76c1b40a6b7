-- expect: truncate
TRUNCATE orders;
-- expect: truncate
TRUNCATE orders CASCADE;
