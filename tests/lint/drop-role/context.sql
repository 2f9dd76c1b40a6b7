-- expect: drop-role
DROP ROLE IF EXISTS a, b;
