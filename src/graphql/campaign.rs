//! Marketing campaigns and a customer's responses to them.

use async_graphql::{Context, Enum, ID, Object, Result};
use c360_macros::classified;
use chrono::{DateTime, Utc};

use super::common::{enum_value, request};
use super::ids::{Kind, global_id};
use crate::sources::marketing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum CampaignChannel {
    Email,
    Sms,
    Push,
    /// Printed mail.
    Mail,
}

/// What a campaign offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum OfferType {
    Coupon,
    Gift,
    Invitation,
    None,
}

/// A marketing campaign.
#[derive(Clone)]
pub struct Campaign(pub marketing::Campaign);

/// A marketing campaign.
#[Object]
impl Campaign {
    /// Global id (use with `node`).
    pub async fn id(&self) -> ID {
        global_id(Kind::Campaign, &self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn channel(&self) -> Result<CampaignChannel> {
        Ok(enum_value("Campaign.channel", &self.0.channel)?)
    }

    async fn offer_type(&self) -> Result<OfferType> {
        Ok(enum_value("Campaign.offerType", &self.0.offer_type)?)
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
}

/// One campaign sent to the customer, and what they did with it.
#[derive(Clone)]
pub struct CampaignResponse(pub marketing::Send);

/// One campaign sent to the customer, and what they did with it.
#[classified]
#[Object]
impl CampaignResponse {
    /// The campaign; null only if the marketing system lost it.
    #[class(marketing)]
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        Ok(request(ctx).loaders.campaigns.load_one(self.0.campaign_id).await?.map(Campaign))
    }

    #[class(marketing)]
    async fn sent_at(&self) -> DateTime<Utc> {
        self.0.sent_at
    }

    /// Null when delivery failed (bounced, unknown number).
    #[class(marketing)]
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }

    #[class(marketing)]
    async fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.0.opened_at
    }

    #[class(marketing)]
    async fn clicked_at(&self) -> Option<DateTime<Utc>> {
        self.0.clicked_at
    }

    /// When the customer bought because of this campaign.
    #[class(marketing)]
    async fn converted_at(&self) -> Option<DateTime<Utc>> {
        self.0.converted_at
    }

    #[class(marketing)]
    async fn unsubscribed_at(&self) -> Option<DateTime<Utc>> {
        self.0.unsubscribed_at
    }

    /// The personal coupon code the send carried, for coupon campaigns.
    #[class(marketing)]
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
}

super::common::connection!(CampaignResponseConnection, CampaignResponseEdge, CampaignResponse, "campaign response");
