-- expect: table-rewrite
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN seq bigserial;
-- expect: table-rewrite
ALTER TABLE orders SET UNLOGGED;
