-- Shop: accounts as created at checkout (guests included), the product catalogue,
-- orders and order lines. Money is stored in minor units (cents) of the order currency.
create table accounts (
    id bigint primary key,
    email varchar(320),
    -- as typed at checkout, in the customer's national or international format
    phone varchar(40),
    name varchar(200),
    -- billing country, ISO 3166-1 alpha-2; the region for national phone numbers
    country varchar(2),
    is_guest boolean not null,
    created_at datetime not null,
    updated_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index accounts_updated on accounts (updated_at, id);

create table products (
    sku varchar(32) primary key,
    name varchar(200) not null,
    category varchar(64) not null,
    price_cents bigint not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;

create table orders (
    id bigint primary key,
    account_id bigint not null,
    number varchar(32) not null,
    ordered_at datetime not null,
    -- placed, paid, shipped, delivered, cancelled, returned
    status varchar(16) not null,
    -- web, store, phone, app
    channel varchar(8) not null,
    -- ISO 4217
    currency varchar(3) not null,
    total_cents bigint not null,
    updated_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
-- Serves the per-account "newest first" window and the purchase summaries.
create index orders_account on orders (account_id, ordered_at, id);
create unique index orders_number on orders (number);

create table order_lines (
    order_id bigint not null,
    line_no integer not null,
    sku varchar(32) not null,
    quantity integer not null,
    unit_price_cents bigint not null,
    primary key (order_id, line_no)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
