-- expect: missing-lock-timeout
ALTER TABLE orders ADD COLUMN note text;
ALTER TABLE orders ADD COLUMN other text;
