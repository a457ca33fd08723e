//! Shop orders as GraphQL types.

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use c360_macros::classified;
use chrono::{DateTime, Utc};

use super::common::ids;
use super::common::{Money, enum_value, request};
use super::ids::Kind;
use crate::sources::shop;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum OrderStatus {
    /// Placed, not yet paid.
    Placed,
    /// Paid, not yet shipped.
    Paid,
    /// On its way.
    Shipped,
    /// Arrived.
    Delivered,
    /// Called off before shipping.
    Cancelled,
    /// Delivered and sent back.
    Returned,
}

/// Where an order was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum SalesChannel {
    /// The web shop.
    Web,
    /// A store.
    Store,
    /// By telephone.
    Phone,
    /// The app.
    App,
}

/// An order from the shop.
#[derive(Clone)]
pub(crate) struct Order(pub shop::Order);

/// An order from the shop.
#[classified]
#[Object]
impl Order {
    /// Global id (use with `node`).
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> ID {
        ids(ctx).global_id(Kind::Order, &self.0.id.to_string())
    }

    /// The order number customers see on their receipt.
    #[class(receipt)]
    async fn number(&self) -> &str {
        &self.0.number
    }

    /// When the order was placed.
    #[class(timing, mask = month)]
    async fn ordered_at(&self) -> DateTime<Utc> {
        self.0.ordered_at
    }

    /// Where the order stands.
    #[class(financial)]
    async fn status(&self) -> Result<OrderStatus> {
        Ok(enum_value("Order.status", &self.0.status)?)
    }

    /// Where the order was placed.
    #[class(financial)]
    async fn channel(&self) -> Result<SalesChannel> {
        Ok(enum_value("Order.channel", &self.0.channel)?)
    }

    /// The order total, in the order's currency.
    #[class(receipt)]
    async fn total(&self) -> Money {
        Money::from_cents(self.0.total_cents, &self.0.currency)
    }

    /// The shop account that placed the order (its key in the shop). A source key, so of
    /// class internal, like `Customer.sourceRecords` and `customerBySourceKey`.
    #[class(internal)]
    async fn account_key(&self) -> String {
        self.0.account_id.to_string()
    }

    /// The order's lines, in line order.
    #[class(financial)]
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        let lines = request(ctx).loaders.order_lines.load_one(self.0.id).await?;
        Ok(lines.map(|ls| ls.iter().map(OrderLine::from).collect()).unwrap_or_default())
    }
}

/// One line of an order.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct OrderLine {
    /// Position in the order, from 1.
    pub(crate) line_no: i32,
    /// The product's stock keeping unit.
    pub(crate) sku: String,
    /// Null when the product is no longer in the catalogue.
    pub(crate) product_name: Option<String>,
    /// The product's category in the catalogue, e.g. `electronics`; null when unknown.
    pub(crate) category: Option<String>,
    /// How many were ordered.
    pub(crate) quantity: i32,
    #[graphql(skip)]
    pub(crate) unit_price: Money,
    #[graphql(skip)]
    pub(crate) line_total: Money,
}

#[classified]
#[ComplexObject]
impl OrderLine {
    /// The price of one, in the order's currency.
    #[class(receipt)]
    async fn unit_price(&self) -> Money {
        self.unit_price.clone()
    }

    /// `quantity` × `unitPrice`.
    #[class(receipt)]
    async fn line_total(&self) -> Money {
        self.line_total.clone()
    }
}

impl From<&shop::OrderLine> for OrderLine {
    fn from(l: &shop::OrderLine) -> Self {
        OrderLine {
            line_no: l.line_no,
            sku: l.sku.clone(),
            product_name: l.product_name.clone(),
            category: l.category.clone(),
            quantity: l.quantity,
            unit_price: Money::from_cents(l.unit_price_cents, &l.currency),
            line_total: Money::from_cents(l.unit_price_cents * i64::from(l.quantity), &l.currency),
        }
    }
}

super::common::connection!(OrderConnection, OrderEdge, Order, "order");
