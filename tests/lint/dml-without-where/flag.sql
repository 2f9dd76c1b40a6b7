-- expect: dml-without-where
DELETE FROM sessions;
-- expect: dml-without-where
UPDATE users SET plan = 'free';
