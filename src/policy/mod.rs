//! Privacy: what a viewer may see of each kind of customer data. Pure decisions, with no
//! GraphQL, HTTP or SQL in them (the GraphQL side is `crate::graphql::privacy`).
//!
//! Every GraphQL field that carries customer data declares its [`PrivacyClass`] next to
//! its resolver (`#[class(..)]`). The policy file (`file`) maps role × class, given the
//! token's scopes, to [`Decision::Show`], [`Decision::Mask`] or [`Decision::Hide`]; the
//! decisions of one request are its [`Access`]. `mask` holds the mask formats.
//!
//! Beside the field rules, the policy's row rules say which customers a role sees at all
//! ([`Rows`]): everyone, or only those who consented to share with the token's partner.

pub(crate) mod file;
pub(crate) mod mask;

use serde::Deserialize;

pub use file::Policy;

/// What kind of customer data a field carries.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Deserialize,
    strum::EnumIter,
    strum::Display,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PrivacyClass {
    /// Who the person is: names.
    Identity,
    /// How to reach them: email, phone, postal address.
    Contact,
    /// Special personal data: birth date, gender.
    Sensitive,
    /// Purchases, orders, amounts.
    Financial,
    /// Helpdesk contact and satisfaction.
    Service,
    /// Campaigns sent and responses.
    Marketing,
    /// The company's own knowledge and plumbing: notes, source records.
    Internal,
    /// Derived figures: tenure, segments, scores.
    Insight,
    /// When one thing happened, to the second: an order, a ticket, a campaign send, a
    /// consent, the sign-up. Masked, to its month.
    Timing,
    /// What one receipt, ticket or message carries that its holder can recognise: order
    /// numbers, one order's amounts and prices, ticket subjects, coupon codes.
    Receipt,
}

/// How many classes there are (the size of a decision table).
pub(crate) const CLASSES: usize = 10;

impl PrivacyClass {
    fn index(self) -> usize {
        self as usize
    }

    /// Whether showing a value of this class unmasked is recorded in the audit log.
    pub const fn audited(self) -> bool {
        matches!(self, PrivacyClass::Contact | PrivacyClass::Sensitive)
    }
}

/// How a field's value is masked when the policy says `mask`. Every format keeps the
/// field's type: a value that has no partial form of its type is removed (null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskFormat {
    /// A string: `jane.doe@example.com` → `j***@example.com`.
    Email,
    /// A string: `+4915123456789` → `***6789` (the last four digits).
    Phone,
    /// A string: `Jane Doe` → `J. D.`
    Initials,
    /// An address object: it keeps its city and country; street and postal code are
    /// masked as their own fields.
    CityCountry,
    /// Removed: the field is null (dates, free text, values with no partial form).
    Remove,
    /// Kept: the value is coarse already (a birth year), so masked it stays as it is.
    Keep,
    /// A time to the first instant of its month (UTC): `2026-03-17T09:41:07Z` →
    /// `2026-03-01T00:00:00Z`; a count of days down to whole months of 30 days.
    Month,
}

/// What a viewer gets of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub(crate) enum Decision {
    Show,
    Mask,
    Hide,
}

/// A field with a privacy class, as the schema declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifiedField {
    /// `Type.field`.
    pub name: String,
    pub class: PrivacyClass,
    /// How its value is masked; `None`: it has no masked form.
    pub(crate) mask: Option<MaskFormat>,
}

/// A role's row rule in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub(crate) enum RowRule {
    /// Every customer.
    All,
    /// Only customers with an active consent for the token's partner (and its purpose).
    Consented,
}

/// Whom a partner may see: customers with an active consent for `partner`, for `purpose`
/// when the token names one (a consent without purpose covers every purpose).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConsentScope {
    pub(crate) partner: String,
    pub(crate) purpose: Option<String>,
}

/// Which customers one request's viewer sees at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rows {
    All,
    /// Only these; anyone else is as if they did not exist.
    ConsentedTo(ConsentScope),
}

/// The decisions for one request's viewer: one per class, and the row rule.
#[derive(Debug, Clone)]
pub struct Access {
    decisions: [Decision; CLASSES],
    pub(crate) rows: Rows,
}

impl Access {
    pub(crate) fn decision(&self, class: PrivacyClass) -> Decision {
        self.decisions[class.index()]
    }

    /// Whether `class` is hidden for this viewer.
    pub fn hides(&self, class: PrivacyClass) -> bool {
        self.decision(class) == Decision::Hide
    }

    /// The hidden classes as a bit set (bit `i`: the class of index `i`), below
    /// `1 << CLASSES`: what a viewer's schema depends on, as a key to cache it by.
    pub fn hidden_set(&self) -> usize {
        self.decisions.iter().enumerate().filter(|(_, d)| **d == Decision::Hide).map(|(i, _)| 1 << i).sum()
    }
}
