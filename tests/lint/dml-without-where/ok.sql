DELETE FROM sessions WHERE expires_at < now();
UPDATE users SET plan = 'free' WHERE plan IS NULL;
UPDATE users u SET plan = p.name FROM plans p WHERE p.id = u.plan_id;
