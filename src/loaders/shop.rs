//! Shop loaders: accounts, orders (by id and newest-first pages per account), order lines,
//! and per-account purchase aggregates.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::{Source, group, paged};
use crate::error::ApiError;
use crate::sources::Page;
use crate::sources::shop::{self, Account, Order, OrderAggregate, OrderLine};

pub struct AccountLoader(pub Source);

impl Loader<i64> for AccountLoader {
    type Value = Account;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Account>, ApiError> {
        let s = &self.0;
        let rows = shop::accounts(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|a| (a.id, a)).collect())
    }
}

pub struct OrderLoader(pub Source);

impl Loader<i64> for OrderLoader {
    type Value = Order;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Order>, ApiError> {
        let s = &self.0;
        let rows = shop::orders(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|o| (o.id, o)).collect())
    }
}

/// The newest orders of an account, one page.
pub struct OrderPageLoader(pub Source);

impl Loader<(i64, Page)> for OrderPageLoader {
    type Value = Arc<Vec<Order>>;
    type Error = ApiError;

    async fn load(&self, keys: &[(i64, Page)]) -> Result<HashMap<(i64, Page), Self::Value>, ApiError> {
        let s = &self.0;
        paged(
            keys,
            |o: &Order| o.account_id,
            |accounts, page| async move {
                shop::orders_page(&s.db, &s.trace, &accounts, &page).await.map_err(|e| s.fail(e))
            },
        )
        .await
    }
}

pub struct OrderLineLoader(pub Source);

impl Loader<i64> for OrderLineLoader {
    type Value = Arc<Vec<OrderLine>>;
    type Error = ApiError;

    async fn load(&self, orders: &[i64]) -> Result<HashMap<i64, Self::Value>, ApiError> {
        let s = &self.0;
        let rows = shop::order_lines(&s.db, &s.trace, orders).await.map_err(|e| s.fail(e))?;
        Ok(group(rows, |l| l.order_id))
    }
}

/// Order aggregates per account (by currency and status).
pub struct PurchaseLoader(pub Source);

impl Loader<i64> for PurchaseLoader {
    type Value = Arc<Vec<OrderAggregate>>;
    type Error = ApiError;

    async fn load(&self, accounts: &[i64]) -> Result<HashMap<i64, Self::Value>, ApiError> {
        let s = &self.0;
        let rows = shop::order_aggregates(&s.db, &s.trace, accounts).await.map_err(|e| s.fail(e))?;
        Ok(group(rows, |a| a.account_id))
    }
}
