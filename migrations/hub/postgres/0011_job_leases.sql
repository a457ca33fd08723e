-- Background jobs that one replica at a time runs (identity resolution, the insight
-- refreshes): the replica holding a job's lease until it expires runs it; the others
-- skip their turn. A replica that dies mid-job loses the lease when it expires.
create table job_leases (
    name varchar(32) primary key,
    -- the holding process
    holder varchar(36) not null,
    expires_at timestamptz not null
);
