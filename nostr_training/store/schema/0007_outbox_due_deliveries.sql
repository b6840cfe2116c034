-- 0007: the deliveries due, without the relay-list look-ups. While no relay is connected the
-- sender asks only for deliveries; with every queued event waiting on a look-up, that query
-- walked all of them through outbox_due on every pass (one pass per second, and one per commit
-- of the local endpoint). This index holds only the rows such a pass can use.
CREATE INDEX outbox_due_deliveries ON outbox (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL AND target_kind != 'lookup';
