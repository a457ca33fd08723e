-- Each model's customers summed per segment, lifecycle stage and value tier when it is
-- fitted, so that the analysts' aggregates read a dozen rows instead of grouping a
-- million on every request.
create table insight_groups (
    model_id varchar(36) not null,
    -- segment, lifecycle or value_tier
    group_kind varchar(12) not null,
    -- the group's value: a segment's name, a stage, a tier
    value varchar(24) not null,
    customers bigint not null,
    monetary_cents bigint not null,
    -- sums and counts of the customers who have a value
    clv_sum double precision not null,
    clv_count bigint not null,
    p_alive_sum double precision not null,
    p_alive_count bigint not null,
    primary key (model_id, group_kind, value)
);
