-- expect: create-index-non-concurrently
CREATE INDEX orders_total_idx ON orders (total);
