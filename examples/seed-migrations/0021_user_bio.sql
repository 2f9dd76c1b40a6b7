-- Migration: Add user bio field
-- Created: 2025-11-01
-- Author: seed 004's migration template, as written there
--
-- The file wraps itself in BEGIN; ... COMMIT; like seed 004's template. keel
-- recognises that wrapper and neutralises it: the statements run inside
-- keel's own transaction, together with the history row, so the migration
-- and its bookkeeping commit or roll back as one.
-- Fix: the template's ADD COLUMN fails when run twice; IF NOT EXISTS.

BEGIN;

-- Your changes here
ALTER TABLE users ADD COLUMN IF NOT EXISTS bio TEXT;

-- Rollback instructions (comment):
-- ALTER TABLE users DROP COLUMN bio;

COMMIT;
