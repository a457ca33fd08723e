-- A counter that every transaction changing identity links or aliases bumps (the
-- resolver's writes, an erasure). Replicas that keep links in memory read it every
-- second and drop what they kept when it has moved.
create table link_generation (
    one smallint primary key,
    generation bigint not null
);
insert into link_generation (one, generation) values (1, 0);
