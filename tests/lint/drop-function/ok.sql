DROP FUNCTION compute_total(int);
CREATE FUNCTION compute_total(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
