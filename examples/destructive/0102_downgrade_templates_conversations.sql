-- 0102_downgrade_templates_conversations: seed 000's superseded
-- 0005_templates_conversations.py downgrade(). Refused by the guard (KL001).

DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE template_usage;
DROP TABLE asset_templates;
DROP TYPE template_type;
