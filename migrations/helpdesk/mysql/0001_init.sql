-- Helpdesk: requesters are created from the email address or phone number a ticket
-- came in with, so one person may be several requesters; there is no customer id.
create table requesters (
    id bigint primary key,
    email varchar(320),
    phone varchar(40),
    name varchar(200),
    created_at datetime not null,
    updated_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index requesters_updated on requesters (updated_at, id);

create table tickets (
    id bigint primary key,
    requester_id bigint not null,
    -- phone, email, chat, social, store
    channel varchar(16) not null,
    -- complaint, inquiry, repair, return, billing
    category varchar(16) not null,
    -- low, normal, high, urgent
    priority varchar(8) not null,
    -- open, pending, solved, closed
    status varchar(16) not null,
    subject varchar(300) not null,
    opened_at datetime not null,
    closed_at datetime,
    -- customer satisfaction 1..5, null when not answered
    csat integer,
    updated_at datetime not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
-- Serves the per-requester "newest first" window and the service summaries.
create index tickets_requester on tickets (requester_id, opened_at, id);
