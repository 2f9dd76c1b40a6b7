-- expect: drop-function
DROP FUNCTION compute_total(int);
-- expect: drop-function
DROP PROCEDURE refresh_all();
