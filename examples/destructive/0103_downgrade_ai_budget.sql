-- 0103_downgrade_ai_budget: seed 000's superseded 0009_ai_budget.py
-- downgrade(). Refused by the guard (KL001).

DROP TABLE ai_budgets;
