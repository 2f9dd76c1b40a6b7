-- expect: drop-extension
DROP EXTENSION pgcrypto;
