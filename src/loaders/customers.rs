//! Finding customers, with the policy's row rule applied: by golden id, by key (email,
//! phone, source record), a page at a time, and the owner of a source record. Lookups by
//! id and key go through batched loaders; pages are one statement per request anyway.
//!
//! A customer the row rule excludes is as if it did not exist, and costs the same: the
//! consent check runs whether or not there is anyone to check.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;

use super::Loaders;
use crate::error::ApiError;
use crate::identity::store::{self, Link, LookupKey, Narrowing};
use crate::policy::{ConsentScope, Rows};
use crate::sources::SourceName;
use crate::sources::crm::{self, Consenting};

/// A golden customer and its source records, ordered by source and key.
#[derive(Debug, Clone)]
pub(crate) struct Golden {
    pub(crate) id: String,
    pub(crate) links: Arc<Vec<Link>>,
}

impl Golden {
    /// The keys this customer has in one source (all sources use integer keys).
    pub(crate) fn keys(&self, source: SourceName) -> Vec<i64> {
        store::source_keys(&self.links, source)
    }

    fn group(links: Vec<Link>) -> Vec<Golden> {
        store::group_by_customer(links).into_iter().map(|(id, links)| Golden { id, links: links.into() }).collect()
    }
}

/// Where a page of customers continues.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Position {
    /// After this golden id (everyone, in id order).
    Id(String),
    /// After this consenting CRM record (a partner's list, in consent order).
    Consent(i64),
    /// After this rank key and golden id (a list ranked by an insight).
    Ranked(f64, String),
}

/// One page of customers, each with the position after it, and the total when asked.
pub(crate) struct Page {
    pub(crate) customers: Vec<(Golden, Position)>,
    pub(crate) total: i64,
}

/// A CRM key no record has (ids are positive): the probe for customers without one.
const NO_CRM_RECORD: i64 = -1;

/// The customers of one request, as its viewer's row rule lets it see them.
pub(crate) struct Customers<'a> {
    pub(super) loaders: &'a Loaders,
}

impl Customers<'_> {
    fn consent(&self) -> Option<&ConsentScope> {
        match &self.loaders.rows {
            Rows::All => None,
            Rows::ConsentedTo(scope) => Some(scope),
        }
    }

    /// Whether pages are in consent order (positions are [`Position::Consent`]).
    pub(crate) fn consent_ordered(&self) -> bool {
        self.consent().is_some()
    }

    /// The customers among `found` the viewer may see. One consent lookup for all of
    /// them (the probe when there are none, so that nobody and somebody cost the same).
    pub(crate) async fn admit(&self, mut found: Vec<Golden>) -> Result<Vec<Golden>, ApiError> {
        if self.consent().is_none() {
            return Ok(found);
        }
        let mut keys: Vec<i64> = found.iter().flat_map(|c| c.keys(SourceName::Crm)).collect();
        if keys.is_empty() {
            keys.push(NO_CRM_RECORD);
        }
        let consented = self.loaders.consents.load_many(keys).await?;
        found.retain(|c| c.keys(SourceName::Crm).iter().any(|k| consented.contains_key(k)));
        Ok(found)
    }

    /// Every customer the viewer may see, with their links, when that is not everyone
    /// (a partner's consenting customers); `None` for a viewer who sees every customer.
    pub(crate) async fn all_admitted(&self) -> Result<Option<Vec<(String, Vec<Link>)>>, ApiError> {
        let Some(scope) = self.consent() else { return Ok(None) };
        let (crm_db, hub) = (&self.loaders.crm, &self.loaders.hub);
        let consenting = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let all = crm::consenting_page(&crm_db.db, &crm_db.trace, consenting, Utc::now(), None, None)
            .await
            .map_err(|e| crm_db.fail(e))?;
        let mut customers: HashMap<String, Vec<Link>> = HashMap::new();
        for keys in all.chunks(hub.db.engine.max_params() - 1) {
            let keys: Vec<String> = keys.iter().map(i64::to_string).collect();
            let links = store::links_by_source_keys(&hub.db, &hub.trace, SourceName::Crm, &keys)
                .await
                .map_err(|e| hub.fail(e))?;
            customers.extend(store::group_by_customer(links));
        }
        Ok(Some(customers.into_iter().collect()))
    }

    /// A customer by golden id (an id merged into another answers with the survivor).
    pub(crate) async fn by_id(&self, id: String) -> Result<Option<Golden>, ApiError> {
        let links = self.loaders.links.load_one(id).await?;
        let found = links.and_then(|links| Some(Golden { id: links.first()?.customer_id.clone(), links }));
        Ok(self.admit(found.into_iter().collect()).await?.pop())
    }

    /// The customers with this key that the viewer may see. (A partner is never told
    /// that a key is shared with customers it cannot see.)
    pub(crate) async fn by_key(&self, key: LookupKey) -> Result<Vec<Golden>, ApiError> {
        let links = self.loaders.key_links.load_one(key).await?.map(|l| l.as_ref().clone()).unwrap_or_default();
        self.admit(Golden::group(links)).await
    }

    /// Whether the customer owning a source record (an order's account, a ticket's
    /// requester) may be seen; no such record is `false`.
    pub(crate) async fn owner_admitted(&self, owner: Option<(SourceName, i64)>) -> Result<bool, ApiError> {
        if self.consent().is_none() {
            return Ok(owner.is_some());
        }
        let found = match owner {
            Some((source, key)) => self.by_key(LookupKey::Source(source, key.to_string())).await?,
            None => self.admit(vec![]).await?,
        };
        Ok(!found.is_empty())
    }

    /// A page of `first` customers after `after` (and one more, to tell whether more
    /// follow), only those with a record in `has_source` when given; with the total when
    /// `total` is asked for.
    pub(crate) async fn page(
        &self,
        first: usize,
        after: Option<Position>,
        has_source: Option<SourceName>,
        narrowing: Option<&Narrowing>,
        total: bool,
    ) -> Result<Page, ApiError> {
        if let Some(scope) = self.consent() {
            let after = match after {
                Some(Position::Consent(k)) => Some(k),
                None => None,
                Some(_) => return Err(ApiError::InvalidCursor),
            };
            if narrowing.is_some_and(|n| n.rank.is_some()) {
                return Err(ApiError::BadInput("a partner's list is in consent order; it cannot be ordered".into()));
            }
            return self.consented_page(scope, first, after, has_source, narrowing, total).await;
        }
        let hub = &self.loaders.hub;
        if let Some(rank) = narrowing.and_then(|n| n.rank.as_ref()) {
            let narrowing = narrowing.ok_or(ApiError::Internal)?;
            let after = match &after {
                Some(Position::Ranked(key, id)) => Some((*key, id.as_str())),
                None => None,
                Some(_) => return Err(ApiError::InvalidCursor),
            };
            let limit = first as i64 + 1;
            let links = store::ranked_page(&hub.db, &hub.trace, after, limit, has_source, narrowing, rank)
                .await
                .map_err(|e| hub.fail(e))?;
            let keys: HashMap<String, f64> = links.iter().map(|l| (l.customer_id.clone(), l.rank_key)).collect();
            let links = links
                .into_iter()
                .map(|l| Link {
                    customer_id: l.customer_id,
                    source: l.source,
                    source_key: l.source_key,
                    rule: l.rule,
                    linked_at: l.linked_at,
                })
                .collect();
            let total = match total {
                true => store::count_customers(&hub.db, &hub.trace, has_source, Some(narrowing))
                    .await
                    .map_err(|e| hub.fail(e))?,
                false => 0,
            };
            let customers = Golden::group(links)
                .into_iter()
                .map(|c| {
                    let after = Position::Ranked(keys.get(&c.id).copied().unwrap_or_default(), c.id.clone());
                    (c, after)
                })
                .collect();
            return Ok(Page { customers, total });
        }
        let after = match after {
            Some(Position::Id(id)) => Some(id),
            None => None,
            Some(_) => return Err(ApiError::InvalidCursor),
        };
        let limit = first as i64 + 1;
        let links = store::customers_page(&hub.db, &hub.trace, after.as_deref(), limit, has_source, narrowing)
            .await
            .map_err(|e| hub.fail(e))?;
        let total = if total {
            store::count_customers(&hub.db, &hub.trace, has_source, narrowing).await.map_err(|e| hub.fail(e))?
        } else {
            0
        };
        let customers = Golden::group(links)
            .into_iter()
            .map(|c| {
                let after = Position::Id(c.id.clone());
                (c, after)
            })
            .collect();
        Ok(Page { customers, total })
    }

    /// A partner's list: customers with an active consent, in the order of the CRM record
    /// that carries it (a customer is listed once, under its lowest consenting record).
    /// The count, when asked for, counts the same customers.
    async fn consented_page(
        &self,
        scope: &ConsentScope,
        first: usize,
        mut after: Option<i64>,
        has_source: Option<SourceName>,
        narrowing: Option<&Narrowing>,
        total: bool,
    ) -> Result<Page, ApiError> {
        let crm_db = &self.loaders.crm;
        let consenting = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let now = Utc::now();
        let want = first + 1;
        let mut listed: Vec<(i64, Golden)> = Vec::new();
        while listed.len() < want {
            let batch = (want * 2) as i64;
            let keys = crm::consenting_page(&crm_db.db, &crm_db.trace, consenting, now, after, Some(batch))
                .await
                .map_err(|e| crm_db.fail(e))?;
            let Some(&last) = keys.last() else { break };
            let owners = self.owners_of_consenting(&keys).await?;
            let kept = self.narrow(owners.iter().map(|(_, c)| c.id.clone()).collect(), narrowing).await?;
            for (position, customer) in owners {
                if has_source.is_none_or(|s| !customer.keys(s).is_empty()) && kept.contains(&customer.id) {
                    listed.push((position, customer));
                }
            }
            after = Some(last);
            if (keys.len() as i64) < batch {
                break;
            }
        }
        listed.sort_by_key(|(position, _)| *position);
        let total = if total {
            let seen: HashSet<String> = self
                .all_admitted()
                .await?
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, links)| has_source.is_none_or(|s| links.iter().any(|l| l.source == s.to_string())))
                .map(|(id, _)| id)
                .collect();
            match narrowing {
                None => seen.len() as i64,
                Some(_) => self.narrow(seen.into_iter().collect(), narrowing).await?.len() as i64,
            }
        } else {
            0
        };
        let customers = listed.into_iter().map(|(p, c)| (c, Position::Consent(p))).collect();
        Ok(Page { customers, total })
    }

    /// Of the golden ids `ids`, those `narrowing` keeps (all of them without one).
    async fn narrow(&self, ids: Vec<String>, narrowing: Option<&Narrowing>) -> Result<HashSet<String>, ApiError> {
        let Some(narrowing) = narrowing else { return Ok(ids.into_iter().collect()) };
        let hub = &self.loaders.hub;
        let mut kept = HashSet::new();
        let room = hub.db.engine.max_params() - narrowing.join_args.len() - narrowing.args.len();
        for chunk in ids.chunks(room.max(1)) {
            kept.extend(store::narrow(&hub.db, &hub.trace, chunk, narrowing).await.map_err(|e| hub.fail(e))?);
        }
        Ok(kept)
    }

    /// The customers owning consenting CRM records `keys` (ascending), each with the key it
    /// is listed under: its lowest consenting CRM key, when that key is among `keys` (else
    /// it was listed on an earlier page).
    async fn owners_of_consenting(&self, keys: &[i64]) -> Result<Vec<(i64, Golden)>, ApiError> {
        let hub = &self.loaders.hub;
        let texts: Vec<String> = keys.iter().map(i64::to_string).collect();
        let links =
            store::links_by_source_keys(&hub.db, &hub.trace, SourceName::Crm, &texts).await.map_err(|e| hub.fail(e))?;
        let customers = Golden::group(links);
        // Other CRM records of these customers may consent too: the lowest consenting one
        // counts. Asked always (the probe when there are none): a page costs the same
        // statements whoever is on it.
        let mut others: Vec<i64> =
            customers.iter().flat_map(|c| c.keys(SourceName::Crm)).filter(|k| keys.binary_search(k).is_err()).collect();
        if others.is_empty() {
            others.push(NO_CRM_RECORD);
        }
        let consented_others: HashMap<i64, ()> = self.loaders.consents.load_many(others).await?;
        Ok(customers
            .into_iter()
            .filter_map(|c| {
                let lowest = c
                    .keys(SourceName::Crm)
                    .into_iter()
                    .filter(|k| keys.binary_search(k).is_ok() || consented_others.contains_key(k))
                    .min()?;
                keys.binary_search(&lowest).is_ok().then_some((lowest, c))
            })
            .collect())
    }
}
