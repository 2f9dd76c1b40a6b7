-- expect: truncate
DO $$ BEGIN
  EXECUTE 'TRUNCATE ledger';
END $$;
