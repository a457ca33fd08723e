-- Service alerts: the log. Each row is one alert, appended once by the replica holding the
-- `alerts` lease (in a transaction fenced by it); `id` only grows and is the cursor that
-- subscriptions and the inbox resume from. The bus carries only "new alerts", never rows.
create table alerts (
    id integer primary key,
    -- COMPLAINT, LOW_SATISFACTION, HIGH_VALUE_ORDER, CHURN_RISK, WIN_BACK
    kind varchar(24) not null,
    customer_id varchar(36) not null,
    -- the source and record the alert is about (helpdesk ticket, shop order, insights)
    source varchar(16) not null,
    source_key varchar(64) not null,
    -- what makes a later change of the same record a new alert of the same kind: empty
    -- (once per record), or the value that changed (a CSAT score, a model)
    variant varchar(64) not null,
    -- when it happened in the source, and when the hub saw it
    occurred_at datetime not null,
    detected_at datetime not null,
    -- the facts that triggered it, as JSON (kind-specific; see `src/alerts/mod.rs`)
    facts varchar(2000) not null,
    -- OPEN, ACKNOWLEDGED, RESOLVED
    status varchar(16) not null,
    -- the token subject the alert is assigned to
    assignee varchar(200),
    updated_at datetime not null,
    updated_by varchar(200)
);
-- Deduplication: a record read again (the overlap window, a retry, a replica taking over)
-- adds nothing.
create unique index alerts_once on alerts (kind, source, source_key, variant);
create index alerts_customer on alerts (customer_id, id);

-- How far detection has read each source's changes: the newest `updated_at` read, to the
-- nanosecond (MySQL's `datetime` keeps whole seconds). Each poll reads again from an
-- overlap window before it, since rows can commit after a later-stamped row was read.
-- `read_nanos`: when the detecting replica last read the source (how far behind it is).
create table alert_positions (
    source varchar(16) primary key,
    watermark_nanos bigint not null,
    read_nanos bigint not null
);
