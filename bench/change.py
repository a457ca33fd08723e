#!/usr/bin/env python3
"""Changes a share of the customers of an embedded (SQLite) deployment, for measuring the
insights' incremental refresh: one new order for a random share of the shop accounts and
one new ticket for a random share of the requesters, stamped now.

    python3 bench/change.py DATA_DIR [--share 0.01] [--day 2026-11-01] [--seed 1]

Then `C360_DATA_DIR=DATA_DIR c360 fit --changed --as-of DAY` scores them again.
"""
import argparse
import datetime
import os
import random
import sqlite3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--share", type=float, default=0.01, help="share of accounts and of requesters changed")
    parser.add_argument("--day", default="2026-11-01", help="the day the new orders and tickets are placed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    placed = f"{args.day}T12:00:00+00:00"

    shop = sqlite3.connect(os.path.join(args.data_dir, "shop.db"))
    accounts = [r[0] for r in shop.execute("select id from accounts")]
    chosen = rng.sample(accounts, int(len(accounts) * args.share))
    next_id = shop.execute("select max(id) from orders").fetchone()[0] + 1
    shop.executemany(
        "insert into orders (id, account_id, number, ordered_at, status, channel, currency, total_cents, updated_at)"
        " values (?, ?, ?, ?, 'paid', 'web', 'EUR', ?, ?)",
        [(next_id + i, a, f"CH-{next_id + i}", placed, rng.randint(500, 30000), now) for i, a in enumerate(chosen)],
    )
    shop.commit()

    desk = sqlite3.connect(os.path.join(args.data_dir, "helpdesk.db"))
    requesters = [r[0] for r in desk.execute("select id from requesters")]
    asked = rng.sample(requesters, int(len(requesters) * args.share))
    next_ticket = desk.execute("select max(id) from tickets").fetchone()[0] + 1
    desk.executemany(
        "insert into tickets (id, requester_id, channel, category, priority, status, subject, opened_at, csat, updated_at)"
        " values (?, ?, 'email', 'complaint', 'normal', 'open', 'Parcel late', ?, ?, ?)",
        [(next_ticket + i, r, placed, rng.choice([None, 1, 2, 3]), now) for i, r in enumerate(asked)],
    )
    desk.commit()
    print(f"{len(chosen)} accounts with a new order, {len(asked)} requesters with a new ticket, stamped {now}")


if __name__ == "__main__":
    main()
