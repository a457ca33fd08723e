//! Privacy: what a viewer may see of each field.
//!
//! Every GraphQL field that carries customer data declares its privacy class next to its
//! resolver with `#[graphql(directive = privacy::apply(..), visible = "..")]`; the class
//! shows in `schema.graphql` as `@privacy(class: CONTACT, mask: EMAIL)`. The policy file
//! (`file`) maps role × class, given the token's scopes, to [`Decision::Show`],
//! [`Decision::Mask`] or [`Decision::Hide`]:
//! - hidden fields do not exist for the viewer: `visible` takes them out of introspection,
//!   and `guard` rejects documents naming them exactly as GraphQL rejects unknown fields;
//! - masked values are rewritten by `guard` as they are resolved (`mask`), whatever alias
//!   or fragment asked for them.
//!
//! The policy knows no SQL and no HTTP; row rules for partners live with the queries that
//! find customers (`crate::graphql::query`).

pub mod file;
pub mod guard;
pub mod mask;
pub mod schema;

use async_graphql::{Context, Enum, TypeDirective};
use serde::Deserialize;

pub use file::Policy;
pub use guard::PolicyGuard;

use crate::auth::Viewer;

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
    Enum,
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
}

/// How many classes there are (the size of a decision table).
pub const CLASSES: usize = 8;

impl PrivacyClass {
    fn index(self) -> usize {
        self as usize
    }

    /// Whether showing a value of this class unmasked is recorded in the audit log.
    pub fn audited(self) -> bool {
        matches!(self, PrivacyClass::Contact | PrivacyClass::Sensitive)
    }
}

/// How a field's value is masked when the policy says `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum MaskFormat {
    /// `jane.doe@example.com` → `j***@example.com`.
    Email,
    /// `+4915123456789` → `***6789` (the last four digits).
    Phone,
    /// `Jane Doe` → `J. D.`
    Initials,
    /// A date → its year (`1984-05-12` → `"1984"`).
    Year,
    /// An address keeps its city and country; street and postal code are removed.
    CityCountry,
    /// Removed: the field is null (free text, values with no partial form).
    Remove,
}

/// What a viewer gets of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Decision {
    Show,
    Mask,
    Hide,
}

/// The privacy class (and mask format) of a field, shown in the schema.
///
/// `class` decides, by the policy, whether the viewer sees the field as is, masked or not
/// at all; `mask` is how it is masked (absent: the field cannot be masked, and a policy
/// that would mask it is refused at start).
#[TypeDirective(location = "FieldDefinition")]
pub fn privacy(class: PrivacyClass, mask: Option<MaskFormat>) {}

/// The decisions for one request's viewer, one per class. Request data of every GraphQL
/// request; without it nothing classified is visible.
#[derive(Debug, Clone)]
pub struct Access {
    pub viewer: Viewer,
    decisions: [Decision; CLASSES],
}

impl Access {
    pub fn decision(&self, class: PrivacyClass) -> Decision {
        self.decisions[class.index()]
    }

    /// Whether `class` is hidden for this viewer.
    pub fn hides(&self, class: PrivacyClass) -> bool {
        self.decision(class) == Decision::Hide
    }
}

/// `visible` functions for fields, one per class: a hidden class is left out of
/// introspection. (Named after the class so the attribute reads `visible = "…::contact"`.)
pub mod visible {
    use super::*;

    fn shown(ctx: &Context<'_>, class: PrivacyClass) -> bool {
        ctx.data_opt::<Access>().is_some_and(|a| !a.hides(class))
    }

    macro_rules! visible_fns {
        ($($name:ident => $class:ident),* $(,)?) => {
            $(
                #[doc = concat!("Visible unless the policy hides `", stringify!($name), "` from the viewer.")]
                pub fn $name(ctx: &Context<'_>) -> bool {
                    shown(ctx, PrivacyClass::$class)
                }
            )*
        };
    }

    visible_fns! {
        identity => Identity,
        contact => Contact,
        sensitive => Sensitive,
        financial => Financial,
        service => Service,
        marketing => Marketing,
        internal => Internal,
        insight => Insight,
    }
}
