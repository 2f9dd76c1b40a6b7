CREATE TYPE tmp_kind AS ENUM ('a');
DROP TYPE tmp_kind;
