//! Marketing loaders: newest-first send pages and send counts per contact, campaigns.

use super::loader;
use crate::sources::marketing::{self, Campaign, Send, SendCount};

loader!(
    /// The newest sends of a contact, one page.
    SendPageLoader: page marketing::sends_page => Send, key |x: &Send| x.contact_id
);
loader!(SendCountLoader: one marketing::send_counts => SendCount as i64, key |r| r.contact_id, entry |r: SendCount| (r.contact_id, r.sends));
loader!(CampaignLoader: one marketing::campaigns => Campaign as Campaign, key |c| c.id, entry |c: Campaign| (c.id, c));
