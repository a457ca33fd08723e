-- Fencing tokens: each take of a lease counts up `token`, and a job's writes commit only
-- while its holder's token is still the lease's (they count `writes` up as they do). A
-- replica that lost its lease (it stalled past the expiry, another took it) cannot
-- commit the job's writes any more.
alter table job_leases add column token bigint not null default 0;
alter table job_leases add column writes bigint not null default 0;
