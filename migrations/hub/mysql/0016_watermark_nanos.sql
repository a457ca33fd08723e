-- The identity resolver's position to the nanosecond. MySQL's `datetime` keeps whole
-- seconds: a position read back from it lay before records already resolved in the same
-- second, and a batch of them sharing one timestamp was read again and again (a run that
-- never ended). `updated_at` stays for people reading the table.
alter table resolve_watermarks add column updated_nanos bigint;
