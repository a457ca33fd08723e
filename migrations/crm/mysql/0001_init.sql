-- CRM: the company's customer master. Keys are the CRM's own customer numbers.
-- Contact data is stored as staff or customers typed it; the hub normalises it.
create table customers (
    id bigint primary key,
    first_name varchar(100) not null,
    last_name varchar(100) not null,
    email varchar(320),
    phone varchar(40),
    birth_date date,
    -- female, male, diverse or null when not given
    gender varchar(16),
    street varchar(200),
    postal_code varchar(20),
    city varchar(100),
    -- ISO 3166-1 alpha-2
    country varchar(2),
    created_at datetime not null,
    updated_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
-- The identity resolver reads changes in (updated_at, id) order.
create index customers_updated on customers (updated_at, id);

-- Consent ledger: one row per grant; revoking sets revoked_at.
create table consents (
    id bigint auto_increment primary key,
    customer_id bigint not null,
    partner_id varchar(64) not null,
    -- null: any purpose
    purpose varchar(64),
    granted_at datetime not null,
    revoked_at datetime
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index consents_customer on consents (customer_id, partner_id);

-- Free-text notes by sales and service staff.
create table notes (
    id bigint auto_increment primary key,
    customer_id bigint not null,
    author varchar(100) not null,
    body text not null,
    created_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index notes_customer on notes (customer_id, created_at);
