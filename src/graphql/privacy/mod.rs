//! The privacy policy in the schema.
//!
//! A field's class is declared once, with `#[class(..)]` (or `#[lookup(..)]` for a lookup
//! by a classified key) inside a `#[classified]` resolver impl (see `c360-macros`). From
//! that declaration follow the `@privacy` / `@lookup` directive in `schema.graphql`, the
//! viewer schemas without the fields their viewers may not see ([`viewer`]), and, for
//! audited classes, the audit note ([`note_read`]).
//!
//! Each request runs on its viewer's schema, in which hidden fields, lookups, filters and
//! the types only they lead to do not exist: validation, introspection and execution
//! cannot tell them from names that never existed. Each classified field's resolver masks
//! its own value where the policy says so ([`decision`], [`Masked`]). The
//! [`PrivacyTable`], read back from the printed schema's directives, checks the policy
//! file against the schema at start.

pub(crate) mod schema;
pub mod viewer;

use async_graphql::{Context, Enum, TypeDirective};

pub use schema::PrivacyTable;

use super::common::request;
use crate::policy::{self, Access, Decision, mask};

/// What kind of customer data a field carries (the policy's classes, as a schema enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::policy::PrivacyClass")]
pub(crate) enum PrivacyClass {
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

/// How a field's value is masked when the policy says `mask`; every format keeps the
/// field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::policy::MaskFormat")]
pub(crate) enum MaskFormat {
    /// A string: `jane.doe@example.com` → `j***@example.com`.
    Email,
    /// A string: `+4915123456789` → `***6789` (the last four digits).
    Phone,
    /// A string: `Jane Doe` → `J. D.`
    Initials,
    /// An address keeps its city and country; street and postal code are masked as their
    /// own fields.
    CityCountry,
    /// Removed: the field is null.
    Remove,
    /// Kept as it is: the value is coarse already (a birth year).
    Keep,
    /// A time to the first instant of its month (UTC); a count of days down to whole
    /// months of 30 days.
    Month,
}

/// The privacy class (and mask format) of a field.
///
/// `class` decides, by the policy, whether the viewer sees the field as is, masked or not
/// at all; `mask` is how it is masked (absent: the field cannot be masked, and a policy
/// that would mask it is refused at start).
#[TypeDirective(location = "FieldDefinition")]
pub(crate) fn privacy(class: PrivacyClass, mask: Option<MaskFormat>) {}

/// A lookup or filter by a value of class `class` (an email, a source key): it exists
/// only for viewers from whom that class is not hidden, like a field of that class.
#[TypeDirective(location = "FieldDefinition", location = "InputFieldDefinition")]
pub(crate) fn lookup(class: PrivacyClass) {}

/// A type whose audited fields belong to one customer: the audit log files their reads
/// under that customer.
pub(crate) trait Subject {
    /// The golden id of the customer the object belongs to.
    fn subject_id(&self) -> &str;
}

/// Whether a resolved value is there (not null, not an error): only values that are
/// there are audited.
pub(crate) trait Present {
    fn present(&self) -> bool;
}

impl<T> Present for Option<T> {
    fn present(&self) -> bool {
        self.is_some()
    }
}

impl<T: Present, E> Present for Result<T, E> {
    fn present(&self) -> bool {
        self.as_ref().is_ok_and(Present::present)
    }
}

/// Notes that the response shows `field` of `customer_id` as is, when `class` is audited
/// and the viewer's policy shows it unmasked, or masks it with a format that `keeps` the
/// value as it is (a birth year). Called by every audited field's resolver, as
/// `#[class(..)]` writes it; never by hand.
pub(crate) fn note_read(
    ctx: &Context<'_>,
    class: PrivacyClass,
    keeps: bool,
    customer_id: &str,
    field: &'static str,
    present: bool,
) {
    let class = policy::PrivacyClass::from(class);
    if !present || !class.audited() {
        return;
    }
    // Without an access decision (never in a served request) the read counts as shown.
    let shown = ctx.data_opt::<Access>().is_none_or(|a| match a.decision(class) {
        Decision::Show => true,
        Decision::Mask => keeps,
        Decision::Hide => false,
    });
    if shown {
        request(ctx).reveals.record(customer_id, field);
    }
}

/// What a classified field's resolver does with its value, by the viewer's policy, as
/// `#[class(..)]` writes it: show it, mask it, or (hidden) never resolve it. A request
/// without an access decision is a wiring bug and sees nothing.
pub(crate) fn decision(ctx: &Context<'_>, class: PrivacyClass) -> Decision {
    match ctx.data_opt::<Access>() {
        Some(access) => access.decision(class.into()),
        None => {
            tracing::error!("GraphQL request without an access decision");
            Decision::Hide
        }
    }
}

/// The error of a field its viewer may not see, should it ever be resolved: validation
/// turns documents naming it away first, so this is never reached. It names nothing.
pub(crate) fn not_shown() -> async_graphql::Error {
    async_graphql::Error::new("internal error")
}

/// A resolver's value in its masked form, of the same type; `#[class(.., mask = ..)]`
/// applies it where the policy masks the field.
pub(crate) trait Masked: Sized {
    fn masked(self, format: policy::MaskFormat) -> Self;
}

impl<T: Masked, E> Masked for Result<T, E> {
    fn masked(self, format: policy::MaskFormat) -> Self {
        self.map(|v| v.masked(format))
    }
}

/// Null stays null; a value the format removes, or does not apply to, becomes null.
impl<T: MaskValue> Masked for Option<T> {
    fn masked(self, format: policy::MaskFormat) -> Self {
        self.and_then(|v| v.mask(format))
    }
}

/// A value a mask format applies to: by default only `keep` keeps it.
pub(crate) trait MaskValue: Sized {
    fn mask(self, format: policy::MaskFormat) -> Option<Self> {
        (format == policy::MaskFormat::Keep).then_some(self)
    }
}

/// A time that must be there has one masked form: its month (`keep` keeps it).
impl Masked for chrono::DateTime<chrono::Utc> {
    fn masked(self, format: policy::MaskFormat) -> Self {
        match format {
            policy::MaskFormat::Keep => self,
            _ => mask::month(self),
        }
    }
}

/// A count of days that must be there has one masked form: whole months of 30 days.
impl Masked for i32 {
    fn masked(self, format: policy::MaskFormat) -> Self {
        match format {
            policy::MaskFormat::Keep => self,
            _ => mask::whole_months(self),
        }
    }
}

impl MaskValue for chrono::DateTime<chrono::Utc> {
    fn mask(self, format: policy::MaskFormat) -> Option<Self> {
        match format {
            policy::MaskFormat::Keep => Some(self),
            policy::MaskFormat::Month => Some(mask::month(self)),
            _ => None,
        }
    }
}

impl MaskValue for String {
    fn mask(self, format: policy::MaskFormat) -> Option<Self> {
        use policy::MaskFormat as F;
        match format {
            F::Email => Some(mask::email(&self)),
            F::Phone => Some(mask::phone(&self)),
            F::Initials => Some(mask::initials(&self)),
            F::Keep => Some(self),
            F::CityCountry | F::Remove | F::Month => None,
        }
    }
}

impl MaskValue for i32 {}
impl MaskValue for chrono::NaiveDate {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MaskFormat as F;

    #[test]
    fn masks_keep_the_type() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(s("jane.doe@example.com").masked(F::Email), s("j***@example.com"));
        assert_eq!(s("+4915123456789").masked(F::Phone), s("***6789"));
        assert_eq!(s("Jane Doe").masked(F::Initials), s("J. D."));
        assert_eq!(chrono::NaiveDate::from_ymd_opt(1984, 5, 12).masked(F::Remove), None);
        assert_eq!(Some(1984).masked(F::Keep), Some(1984));
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("a time");
        assert_eq!(at("2026-03-17T09:41:07.5Z").masked(F::Month), at("2026-03-01T00:00:00Z"));
        assert_eq!(Some(at("2026-12-31T23:59:59Z")).masked(F::Month), Some(at("2026-12-01T00:00:00Z")));
        assert_eq!(None::<chrono::DateTime<chrono::Utc>>.masked(F::Month), None);
        assert_eq!(
            (0..3).chain([29, 30, 59, 61, 365]).map(|d| d.masked(F::Month)).collect::<Vec<i32>>(),
            [0, 0, 0, 0, 30, 30, 60, 360]
        );
        assert_eq!(None::<String>.masked(F::Email), None);
        assert_eq!(Ok::<_, ()>(s("secret")).masked(F::Remove), Ok(None));
        // A string format never applies to another type, and a string never keeps a city.
        assert_eq!(Some(42).masked(F::Phone), None);
        assert_eq!(s("Main St 1").masked(F::CityCountry), None);
    }
}
