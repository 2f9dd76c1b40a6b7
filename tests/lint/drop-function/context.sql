CREATE FUNCTION helper() RETURNS int LANGUAGE sql AS 'SELECT 1';
DROP FUNCTION helper();
-- expect: drop-function
DROP FUNCTION other_helper();
