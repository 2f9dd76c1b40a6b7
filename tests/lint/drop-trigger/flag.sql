-- expect: drop-trigger
DROP TRIGGER audit_changes ON orders;
