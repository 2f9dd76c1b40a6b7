CREATE TABLE staging_rows (id int);
