-- Incremental refreshes between full fits: the customers whose purchases, service or
-- links changed since a model's watermark are scored again in place, against the
-- model's parameters and the population's cut points, as of the refresh's day.
-- JSON: RFM quintile cut points, value tier cut points, the population's mean CSAT
alter table insight_models add column cuts text;
-- JSON: the newest change each source held when the model's rows were last read
-- (orders' and tickets' updated_at, the links' linked_at); later ones are not in the rows
alter table insight_models add column watermarks text;
-- the last incremental refresh
alter table insight_models add column updated_at datetime;
-- the day this row was scored as of; null: the model's as_of
alter table customer_insights add column scored_on date;
-- New links since the watermark.
create index identity_links_linked on identity_links (linked_at);
