CREATE TABLE events (id int, at timestamptz);
