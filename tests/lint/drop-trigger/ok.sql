DROP TRIGGER audit_changes ON orders;
CREATE TRIGGER audit_changes AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();
