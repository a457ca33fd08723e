-- Products bought together, per model: for each product, the others found in the same
-- orders more often than chance would have it (lift = P(both) / (P(one) · P(other)) over
-- all orders), strongest first. The cross-sell half of next best actions.
create table insight_affinities (
    model_id varchar(36) not null,
    sku varchar(32) not null,
    other_sku varchar(32) not null,
    -- the other product's name when the model was fitted
    other_name varchar(200) not null,
    -- orders holding both
    orders bigint not null,
    lift double precision not null,
    primary key (model_id, sku, other_sku)
);

-- The products sold up to the model's date, with their mean selling price: the up-sell
-- half (a pricier product of a category the customer buys).
create table insight_products (
    model_id varchar(36) not null,
    sku varchar(32) not null,
    name varchar(200) not null,
    category varchar(64) not null,
    -- mean unit price over the order lines sold, in cents
    price_cents bigint not null,
    orders bigint not null,
    primary key (model_id, sku)
);
create index insight_products_category on insight_products (model_id, category, price_cents);
