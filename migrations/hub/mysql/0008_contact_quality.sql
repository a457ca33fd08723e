-- Contact data a source record holds that the resolver could not read (an email without
-- a domain, a phone number with too few digits for its region): such a record matches on
-- its other keys only, and the data-quality report counts it per source.
alter table identity_links add column email_invalid boolean not null default false;
alter table identity_links add column phone_invalid boolean not null default false;
