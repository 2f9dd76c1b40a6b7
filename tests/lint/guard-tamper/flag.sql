-- expect: guard-tamper
DROP EXTENSION keel CASCADE;
-- expect: guard-tamper
ALTER EVENT TRIGGER keel_guard_sql_drop DISABLE;
-- expect: guard-tamper
CREATE OR REPLACE FUNCTION keel.guard_sql_drop() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
-- expect: guard-tamper
ALTER TABLE keel.credit_ledger DISABLE TRIGGER credit_ledger_append_only;
