-- Tickets changed since a time: what the insights' incremental refresh reads.
create index tickets_updated on tickets (updated_at);
