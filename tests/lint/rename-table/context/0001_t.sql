CREATE TABLE draft_table (a int);
