-- the DELETE inside the DO block is reported at the DO statement
-- expect: dml-without-where
DO $$ BEGIN
  DELETE FROM sessions;
END $$;
