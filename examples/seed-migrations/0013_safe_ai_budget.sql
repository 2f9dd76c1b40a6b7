-- keel:supersedes 0009
--
-- 0013_safe_ai_budget: seed 000's safe replacement of the superseded
-- 0009_ai_budget (whose downgrade drops ai_budgets).
--
-- Fixes: current_date is a reserved word in PostgreSQL (it is the
-- CURRENT_DATE function), so the seed's column "current_date DATE NOT NULL
-- DEFAULT CURRENT_DATE" is a syntax error: the column name is quoted here
-- (queries must write "current_date" too). VARCHAR(36) ids -> uuid (see 0001).

CREATE TABLE IF NOT EXISTS ai_budgets (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL,
    daily_token_limit INTEGER NOT NULL DEFAULT 100000,
    daily_cost_limit_gbp FLOAT NOT NULL DEFAULT 50.0,
    "current_date" DATE NOT NULL DEFAULT CURRENT_DATE,
    tokens_used_today INTEGER NOT NULL DEFAULT 0,
    cost_gbp_today FLOAT NOT NULL DEFAULT 0.0,
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    PRIMARY KEY (id),
    FOREIGN KEY(org_id) REFERENCES organizations (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS ix_ai_budgets_org_id ON ai_budgets (org_id);
