-- expect: drop-type
DROP TYPE mood;
-- expect: drop-type
DROP DOMAIN email_address;
