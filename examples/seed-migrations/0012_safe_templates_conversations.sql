-- keel:supersedes 0005
--
-- 0012_safe_templates_conversations: seed 000's safe replacement of the
-- superseded 0005_templates_conversations (whose downgrade drops messages,
-- conversations, template_usage, asset_templates and template_type).
--
-- Fixes: CREATE TYPE IF NOT EXISTS does not exist (DO block catching
-- duplicate_object); VARCHAR(36) ids -> uuid (see 0001).

DO $$
BEGIN
    CREATE TYPE template_type AS ENUM ('image', 'video');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS asset_templates (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id UUID,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    type template_type NOT NULL,
    spec JSON NOT NULL,
    is_public BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMP NOT NULL,
    created_by UUID,
    PRIMARY KEY (id),
    UNIQUE (org_id, created_by),
    FOREIGN KEY(org_id) REFERENCES organizations (id) ON DELETE CASCADE,
    FOREIGN KEY(created_by) REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX IF NOT EXISTS ix_asset_templates_org_id ON asset_templates (org_id);

CREATE TABLE IF NOT EXISTS template_usage (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    template_id UUID NOT NULL,
    org_id UUID NOT NULL,
    content_item_id UUID,
    used_at TIMESTAMP NOT NULL,
    inputs JSON,
    PRIMARY KEY (id),
    FOREIGN KEY(template_id) REFERENCES asset_templates (id) ON DELETE CASCADE,
    FOREIGN KEY(org_id) REFERENCES organizations (id) ON DELETE CASCADE,
    FOREIGN KEY(content_item_id) REFERENCES content_items (id) ON DELETE SET NULL
);

CREATE INDEX IF NOT EXISTS ix_template_usage_template_id ON template_usage (template_id);
CREATE INDEX IF NOT EXISTS ix_template_usage_org_id ON template_usage (org_id);
CREATE INDEX IF NOT EXISTS ix_template_usage_content_item_id ON template_usage (content_item_id);

CREATE TABLE IF NOT EXISTS conversations (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL,
    channel VARCHAR(32) NOT NULL,
    peer_id VARCHAR(255) NOT NULL,
    last_message_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(org_id) REFERENCES organizations (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS ix_conversations_org_id ON conversations (org_id);
CREATE INDEX IF NOT EXISTS ix_conversations_peer_id ON conversations (peer_id);

CREATE TABLE IF NOT EXISTS messages (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    conversation_id UUID NOT NULL,
    direction VARCHAR(16) NOT NULL,
    text TEXT,
    media_url VARCHAR(500),
    metadata JSON,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS ix_messages_conversation_id ON messages (conversation_id);
