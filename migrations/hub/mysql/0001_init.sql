-- The hub's own store: golden customers and the links that resolve source records
-- into them. The only state the hub keeps; every replica shares it.
create table customers (
    -- UUID v7: time-ordered, so the customer list pages in creation order
    id varchar(36) primary key,
    created_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;

-- One row per source record: which golden customer it belongs to and why.
-- The normalised keys are kept so that new records can be matched incrementally.
create table identity_links (
    -- crm, shop, helpdesk, marketing
    source varchar(16) not null,
    source_key varchar(64) not null,
    customer_id varchar(36) not null,
    -- anchor (founded the customer), email, phone
    rule varchar(16) not null,
    email_norm varchar(320),
    phone_norm varchar(20),
    -- normalised full name, CRM records only: guards merges of two CRM people
    name_key varchar(200),
    linked_at datetime not null,
    primary key (source, source_key)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index identity_links_customer on identity_links (customer_id);
create index identity_links_email on identity_links (email_norm);
create index identity_links_phone on identity_links (phone_norm);

-- A customer merged into another keeps answering under its old id.
create table customer_aliases (
    old_id varchar(36) primary key,
    customer_id varchar(36) not null,
    merged_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;

-- Keys (emails, phones) that belong to more than one person; never used to match.
create table ambiguous_keys (
    kind varchar(8) not null,
    value varchar(320) not null,
    primary key (kind, value)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;

-- What the resolver reported instead of merging, or merged and flagged for review.
create table identity_conflicts (
    id varchar(36) primary key,
    -- shared_email, shared_phone, merge_blocked, duplicate_record
    kind varchar(32) not null,
    source varchar(16) not null,
    source_key varchar(64) not null,
    customer_id varchar(36) not null,
    other_customer_id varchar(36),
    detected_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index identity_conflicts_customer on identity_conflicts (customer_id);

-- Where the incremental resolver stopped, per source: the last (updated_at, key) read.
create table resolve_watermarks (
    source varchar(16) primary key,
    updated_at datetime not null,
    last_key bigint not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;

-- Written by `c360 seed` only: which demo person each seeded record belongs to,
-- so that tests can measure identity resolution against the truth.
create table seed_truth (
    source varchar(16) not null,
    source_key varchar(64) not null,
    person_id bigint not null,
    primary key (source, source_key)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
