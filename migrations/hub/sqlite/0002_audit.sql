-- Audit log: who saw whose personal data. One row per customer per response that
-- revealed an unmasked contact or sensitive value, and per export or erasure.
-- Never holds the personal data itself: field names, not values.
create table audit_log (
    id integer primary key,
    at datetime not null,
    -- the request's id, as sent back in its `x-request-id` header
    request_id varchar(36) not null,
    -- the token's subject, role and partner
    subject varchar(200) not null,
    role varchar(16) not null,
    partner varchar(64),
    -- read, export, erase
    action varchar(16) not null,
    customer_id varchar(36) not null,
    -- the fields revealed, comma-separated: email,phone
    fields varchar(1000) not null
);
create index audit_log_customer on audit_log (customer_id, id);
create index audit_log_subject on audit_log (subject, id);
create index audit_log_at on audit_log (at, id);
