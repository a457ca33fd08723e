//! Marketing campaigns and a customer's responses to them.

use async_graphql::{Context, Enum, ID, Object, Result};
use c360_macros::classified;
use chrono::{DateTime, Utc};

use super::common::ids;
use super::common::{enum_value, request};
use super::ids::Kind;
use crate::sources::marketing;

/// How a campaign reaches people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum CampaignChannel {
    /// Email.
    Email,
    /// Text message.
    Sms,
    /// A notification in the app.
    Push,
    /// Printed mail.
    Mail,
}

/// What a campaign offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum OfferType {
    /// A discount code.
    Coupon,
    /// A gift with a purchase.
    Gift,
    /// An invitation to an event.
    Invitation,
    /// No offer: news only.
    None,
}

/// A marketing campaign.
#[derive(Clone)]
pub(crate) struct Campaign(pub marketing::Campaign);

/// A marketing campaign.
#[Object]
impl Campaign {
    /// Global id (use with `node`).
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> ID {
        ids(ctx).global_id(Kind::Campaign, &self.0.id.to_string())
    }

    /// The campaign's name, e.g. `Black Friday 2025`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// How it reaches people.
    async fn channel(&self) -> Result<CampaignChannel> {
        Ok(enum_value("Campaign.channel", &self.0.channel)?)
    }

    /// What it offers.
    async fn offer_type(&self) -> Result<OfferType> {
        Ok(enum_value("Campaign.offerType", &self.0.offer_type)?)
    }

    /// When it starts running.
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }

    /// When it stops.
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
}

/// One campaign sent to the customer, and what they did with it.
#[derive(Clone)]
pub(crate) struct CampaignResponse(pub marketing::Send);

/// One campaign sent to the customer, and what they did with it.
#[classified]
#[Object]
impl CampaignResponse {
    /// The campaign; null only if the marketing system lost it.
    #[class(marketing)]
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        Ok(request(ctx).loaders.campaigns.load_one(self.0.campaign_id).await?.map(Campaign))
    }

    /// When it was sent to the customer.
    #[class(timing, mask = month)]
    async fn sent_at(&self) -> DateTime<Utc> {
        self.0.sent_at
    }

    /// Null when delivery failed (bounced, unknown number).
    #[class(timing, mask = month)]
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }

    /// When the customer first opened it; null when never (or not measurable).
    #[class(timing, mask = month)]
    async fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.0.opened_at
    }

    /// When the customer first followed a link in it; null when never.
    #[class(timing, mask = month)]
    async fn clicked_at(&self) -> Option<DateTime<Utc>> {
        self.0.clicked_at
    }

    /// When the customer bought because of this campaign.
    #[class(timing, mask = month)]
    async fn converted_at(&self) -> Option<DateTime<Utc>> {
        self.0.converted_at
    }

    /// When the customer unsubscribed through it; null when they did not.
    #[class(timing, mask = month)]
    async fn unsubscribed_at(&self) -> Option<DateTime<Utc>> {
        self.0.unsubscribed_at
    }

    /// The personal coupon code the send carried, for coupon campaigns.
    #[class(receipt)]
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
}

super::common::connection!(CampaignResponseConnection, CampaignResponseEdge, CampaignResponse, "campaign response");
