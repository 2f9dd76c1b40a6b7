DROP TYPE mood;
CREATE TYPE mood AS ENUM ('happy', 'sad');
