-- The rows c360 serves, as one schema (`api`) that PostGraphile serves: the four source
-- databases are schemas of the benchmark database (crm, shop, helpdesk, marketing, hub),
-- joined through the hub's identity links, as c360 joins them. Recreated on every run.
drop schema if exists api cascade;
create schema api;

-- One golden customer: the profile of its first CRM record, else of its first shop
-- account (c360's rule), the phone in E.164 as the resolver normalised it.
create view api.customers as
select c.id,
       coalesce(p.first_name || ' ' || p.last_name, a.name) as display_name,
       p.first_name,
       p.last_name,
       lower(trim(coalesce(p.email, a.email))) as email,
       coalesce(pl.phone_norm, al.phone_norm) as phone,
       p.birth_date,
       p.gender,
       p.city,
       coalesce(p.country, a.country) as country,
       least(p.created_at, a.created_at) as customer_since
from hub.customers c
left join lateral (
    select l.source_key::bigint as k, l.phone_norm from hub.identity_links l
    where l.customer_id = c.id and l.source = 'crm' order by l.source_key::bigint limit 1
) pl on true
left join crm.customers p on p.id = pl.k
left join lateral (
    select l.source_key::bigint as k, l.phone_norm from hub.identity_links l
    where l.customer_id = c.id and l.source = 'shop' order by l.source_key::bigint limit 1
) al on true
left join shop.accounts a on a.id = al.k;
comment on view api.customers is E'@primaryKey id';

-- Lookup by normalised email, as c360's `customerByEmail` (the links' email index).
create view api.customer_emails as
select distinct l.email_norm as email, l.customer_id from hub.identity_links l where l.email_norm is not null;
comment on view api.customer_emails is
    E'@primaryKey email,customer_id\n@foreignKey (customer_id) references api.customers (id)';

create view api.orders as
select o.id, l.customer_id, o.number, o.ordered_at, o.status, o.channel, o.currency, o.total_cents
from hub.identity_links l
join shop.orders o on o.account_id = l.source_key::bigint
where l.source = 'shop';
comment on view api.orders is E'@primaryKey id\n@foreignKey (customer_id) references api.customers (id)';

create view api.order_lines as
select ol.order_id, ol.line_no, ol.sku, p.name as product_name, ol.quantity, ol.unit_price_cents
from shop.order_lines ol
left join shop.products p on p.sku = ol.sku;
comment on view api.order_lines is
    E'@primaryKey order_id,line_no\n@foreignKey (order_id) references api.orders (id)';

create view api.tickets as
select t.id, l.customer_id, t.opened_at, t.closed_at, t.channel, t.category, t.priority, t.status, t.subject, t.csat
from hub.identity_links l
join helpdesk.tickets t on t.requester_id = l.source_key::bigint
where l.source = 'helpdesk';
comment on view api.tickets is E'@primaryKey id\n@foreignKey (customer_id) references api.customers (id)';

create view api.campaigns as
select id, name, channel, offer_type, starts_at, ends_at from marketing.campaigns;
comment on view api.campaigns is E'@primaryKey id';

create view api.campaign_responses as
select s.id, l.customer_id, s.campaign_id, s.sent_at, s.delivered_at, s.opened_at, s.clicked_at, s.converted_at,
       s.unsubscribed_at, s.coupon_code
from hub.identity_links l
join marketing.sends s on s.contact_id = l.source_key::bigint
where l.source = 'marketing';
comment on view api.campaign_responses is E'@primaryKey id\n'
    '@foreignKey (customer_id) references api.customers (id)\n'
    '@foreignKey (campaign_id) references api.campaigns (id)';
