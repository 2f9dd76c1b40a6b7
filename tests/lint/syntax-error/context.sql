-- psql meta-commands are not SQL
-- expect: syntax-error
\d users
