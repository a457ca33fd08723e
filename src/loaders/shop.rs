//! Shop loaders: accounts, orders (by id and newest-first pages per account), order lines,
//! and per-account purchase aggregates.

use super::loader;
use crate::sources::shop::{self, Account, Bought, Order, OrderAggregate, OrderLine};

loader!(AccountLoader: one shop::accounts => Account as Account, key |a| a.id, entry |a: Account| (a.id, a));
loader!(OrderLoader: one shop::orders => Order as Order, key |o| o.id, entry |o: Order| (o.id, o));
loader!(
    /// The newest orders of an account, one page.
    OrderPageLoader: page shop::orders_page => Order, key |o: &Order| o.account_id
);
loader!(
    /// The products each account bought, with the most it paid for each.
    BoughtLoader: many shop::bought => Bought, key |b: &Bought| b.account_id
);
loader!(OrderLineLoader: many shop::order_lines => OrderLine, key |l: &OrderLine| l.order_id);
loader!(
    /// Order aggregates per account (by currency and status).
    PurchaseLoader: many shop::order_aggregates => OrderAggregate, key |a: &OrderAggregate| a.account_id
);
