-- the table was created earlier in the folder: new
DROP TABLE staging_rows;
-- expect: drop-table
DROP TABLE customers;
