-- expect: add-constraint-without-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
-- expect: add-constraint-without-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0);
-- expect: add-constraint-without-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE (ref);
