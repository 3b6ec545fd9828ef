-- The parent's clock minus this node's at the last session, for `yizhan status`
-- (a station PC with a wrong clock stamps wrong dates on receipts).
ALTER TABLE peers ADD COLUMN clock_offset_ms INTEGER;
