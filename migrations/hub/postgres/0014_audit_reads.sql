-- One row per response that revealed personal data, not one per customer: the response's
-- row in audit_log (action `read`, customer_id '', `fields` the fields shown of most of
-- its customers) and one narrow row here per customer it revealed, with that customer's
-- fields when they differ from the response's (null when they are the same). A page of
-- 50 customers wrote 50 full rows with four index entries each; now it writes one, and
-- 50 of three columns with two index entries each. Entries of other actions (exports,
-- erasures, consent changes, refusals) and reads logged before this migration keep their
-- customer in audit_log.customer_id.
create table audit_reads (
    request_id varchar(36) not null,
    customer_id varchar(36) not null,
    fields varchar(1000),
    primary key (request_id, customer_id)
);
create index audit_reads_customer on audit_reads (customer_id, request_id);
create index audit_log_request on audit_log (request_id);
