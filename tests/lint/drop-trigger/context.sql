-- a trigger of that name on another table is no replacement
-- expect: drop-trigger
DROP TRIGGER audit_changes ON orders;
CREATE TRIGGER audit_changes AFTER UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION audit();
