-- expect: table-rewrite
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN seq bigserial;
-- expect: table-rewrite
ALTER TABLE orders SET UNLOGGED;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN total2 numeric GENERATED ALWAYS AS (total * 2) STORED;
