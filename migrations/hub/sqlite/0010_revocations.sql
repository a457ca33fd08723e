-- Revoked bearer tokens: one token by its id (`jti`), or every token of a subject or of a
-- partner issued up to the revocation (tokens without `iat` whenever). Every replica
-- reads this table every few seconds. Who revoked, when and why stay as the record.
create table token_revocations (
    -- jti, subject, partner
    kind varchar(8) not null,
    value varchar(320) not null,
    revoked_at datetime not null,
    -- the admin's token subject, or `cli`
    revoked_by varchar(200) not null,
    reason varchar(500),
    primary key (kind, value)
);
