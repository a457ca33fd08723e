-- The Pareto curve of each model: customers ranked by money spent, most first, and the
-- share of revenue the first permille/1000 of them bring. Written with the model's rows,
-- so that `paretoCurve` reads at most a thousand rows instead of every customer.
create table insight_pareto (
    model_id varchar(36) not null,
    -- 1..1000: the share of customers, in thousandths
    permille integer not null,
    -- how many customers that share is (rounded up)
    customers bigint not null,
    revenue_share double precision not null,
    primary key (model_id, permille)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
