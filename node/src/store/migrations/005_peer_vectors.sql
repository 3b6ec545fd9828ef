-- What each peer last said it holds (its version vector, encoded as an ack message) and
-- when, so that status can count the changes waiting for it: pending up for the parent,
-- pending down for a child (sync issue, §4).
ALTER TABLE peers ADD COLUMN known_vector BLOB;
ALTER TABLE peers ADD COLUMN known_vector_ms INTEGER;
