-- Marketing: contacts (own ids, keyed by email), campaigns, and one row per send
-- carrying the responses to it as timestamps.
create table contacts (
    id bigint primary key,
    email varchar(320) not null,
    first_name varchar(100),
    subscribed boolean not null,
    created_at datetime not null,
    updated_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index contacts_updated on contacts (updated_at, id);

create table campaigns (
    id bigint primary key,
    name varchar(200) not null,
    -- email, sms, push, mail
    channel varchar(8) not null,
    -- coupon, gift, invitation, none
    offer_type varchar(16) not null,
    starts_at datetime not null,
    ends_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;

create table sends (
    id bigint primary key,
    campaign_id bigint not null,
    contact_id bigint not null,
    sent_at datetime not null,
    delivered_at datetime,
    opened_at datetime,
    clicked_at datetime,
    converted_at datetime,
    unsubscribed_at datetime,
    coupon_code varchar(32)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
-- Serves the per-contact "newest first" window.
create index sends_contact on sends (contact_id, sent_at, id);
