-- Orders changed since a time: what the insights' incremental refresh reads.
create index orders_updated on orders (updated_at);
