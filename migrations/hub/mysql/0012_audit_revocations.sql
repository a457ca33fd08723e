-- Revoked tokens are recorded in the audit log too: action `revoke`, no customer
-- (customer_id ''), `fields` the kind (token_id, subject or partner) and `target` what
-- was revoked: a token id, a subject or a partner id (never a customer's data).
alter table audit_log add column target varchar(320);
