-- expect: drop-index
DROP INDEX users_email_idx;
