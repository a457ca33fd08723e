-- Customer insights, kept per customer so that requests never wait for a fit.
-- One row per fit in insight_models; requests read the newest ready one. A fit writes
-- its rows under its own id and turns ready only once all are written, so a failed or
-- running fit changes nothing; the rows of older models are then deleted.
create table insight_models (
    id varchar(36) primary key,
    -- running, ready, failed or superseded
    status varchar(12) not null,
    -- the analysis date: purchases up to and including this day count
    as_of date not null,
    started_at datetime not null,
    finished_at datetime,
    -- customers with a purchase up to as_of (the scored population)
    customers bigint not null,
    -- BG/NBD (purchases) and Gamma-Gamma (spend) parameters; null when the data could
    -- not fit them (no repeat purchases)
    bgnbd_r double precision,
    bgnbd_alpha double precision,
    bgnbd_a double precision,
    bgnbd_b double precision,
    bgnbd_log_likelihood double precision,
    spend_p double precision,
    spend_q double precision,
    spend_v double precision,
    -- milliseconds spent: reading the sources, fitting, writing
    read_ms bigint not null,
    fit_ms bigint not null,
    write_ms bigint not null
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
create index insight_models_status on insight_models (status, finished_at);

-- One row per customer with a purchase up to the model's as_of. Customers without one
-- have no row (their insights are those of a customer who has not bought yet).
create table customer_insights (
    model_id varchar(36) not null,
    customer_id varchar(36) not null,
    -- BG/NBD's history: repeat purchase days (x), weeks from the first to the last
    -- purchase (t_x), weeks from the first purchase to as_of (T)
    frequency integer not null,
    recency_weeks double precision not null,
    age_weeks double precision not null,
    -- RFM's figures: days since the last purchase, purchase days, money spent (cents)
    recency_days integer not null,
    monetary_cents bigint not null,
    -- mean spend of the repeat purchase days, currency units (Gamma-Gamma's m)
    repeat_mean_spend double precision not null,
    r_score smallint not null,
    f_score smallint not null,
    m_score smallint not null,
    -- the segment's published name: Champions, Loyal Customers, ..., Can't Lose Them
    segment varchar(24) not null,
    p_alive double precision,
    -- 12 months at 1% a month: for filters and ordering (other horizons are computed)
    clv_12m double precision,
    -- EXPLORATION, FORMATION, STABILITY, DECLINE, LOST
    lifecycle varchar(12) not null,
    -- TOP, CORE, TAIL
    value_tier varchar(4) not null,
    primary key (model_id, customer_id)
) default charset = utf8mb4 collate = utf8mb4_unicode_ci;
-- Filters by segment, stage and tier page in customer id order within one model.
create index customer_insights_segment on customer_insights (model_id, segment, customer_id);
create index customer_insights_lifecycle on customer_insights (model_id, lifecycle, customer_id);
create index customer_insights_tier on customer_insights (model_id, value_tier, customer_id);
