-- expect: guard-tamper
ALTER SCHEMA keel RENAME TO keel_old;
