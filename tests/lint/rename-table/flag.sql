-- expect: rename-table
ALTER TABLE orders RENAME TO purchases;
-- expect: rename-table
ALTER TABLE orders SET SCHEMA archive;
