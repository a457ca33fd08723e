-- Satisfaction, from the helpdesk, beside each customer's purchase insights: perceived
-- service (CSAT) against expectation, and the value × satisfaction quadrant. Null where
-- the customer has no tickets (quadrant: nothing to judge by).
alter table customer_insights add column tickets integer;
alter table customer_insights add column open_complaints integer;
alter table customer_insights add column average_csat double precision;
alter table customer_insights add column complaint_rate double precision;
-- perceived minus expected CSAT, in points
alter table customer_insights add column satisfaction_index double precision;
-- RETAIN, WIN_BACK, MAINTAIN, DEPRIORITIZE
alter table customer_insights add column quadrant varchar(12);
create index customer_insights_quadrant on customer_insights (model_id, quadrant, customer_id);
