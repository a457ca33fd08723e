//! The privacy policy in the schema.
//!
//! A field's class is declared once, with `#[class(..)]` (or `#[lookup(..)]` for a lookup
//! by a classified key) inside a `#[classified]` resolver impl (see `c360-macros`). From
//! that declaration follow the `@privacy` / `@lookup` directive in `schema.graphql`, the
//! field's visibility in introspection (the `visible` functions below) and, for audited
//! classes, the audit note ([`note_read`]).
//!
//! At run time the [`PolicyGuard`] extension reads the directives back from the printed
//! schema ([`PrivacyTable`]): it rejects documents that name what the viewer may not see,
//! exactly as GraphQL rejects unknown names, and masks values as they resolve.

pub mod guard;
pub mod schema;

use async_graphql::{Context, Enum, TypeDirective, Value};

pub use guard::PolicyGuard;
pub use schema::PrivacyTable;

use super::common::request;
use crate::policy::{self, Access, Decision, mask};

/// What kind of customer data a field carries (the policy's classes, as a schema enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::policy::PrivacyClass")]
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

/// How a field's value is masked when the policy says `mask`; every format keeps the
/// field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::policy::MaskFormat")]
pub enum MaskFormat {
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
}

/// The privacy class (and mask format) of a field.
///
/// `class` decides, by the policy, whether the viewer sees the field as is, masked or not
/// at all; `mask` is how it is masked (absent: the field cannot be masked, and a policy
/// that would mask it is refused at start).
#[TypeDirective(location = "FieldDefinition")]
pub fn privacy(class: PrivacyClass, mask: Option<MaskFormat>) {}

/// A lookup or filter by a value of class `class` (an email, a source key): it exists
/// only for viewers from whom that class is not hidden, like a field of that class.
#[TypeDirective(location = "FieldDefinition", location = "InputFieldDefinition")]
pub fn lookup(class: PrivacyClass) {}

/// A type whose audited fields belong to one customer: the audit log files their reads
/// under that customer.
pub trait Subject {
    /// The golden id of the customer the object belongs to.
    fn subject_id(&self) -> &str;
}

/// Whether a resolved value is there (not null, not an error): only values that are
/// there are audited.
pub trait Present {
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
/// and the viewer's policy shows it unmasked. Called by every audited field's resolver,
/// as `#[class(..)]` writes it; never by hand.
pub fn note_read(ctx: &Context<'_>, class: PrivacyClass, customer_id: &str, field: &'static str, present: bool) {
    let class = policy::PrivacyClass::from(class);
    if !present || !class.audited() {
        return;
    }
    // Without an access decision (never in a served request) the read counts as shown.
    let shown = ctx.data_opt::<Access>().is_none_or(|a| a.decision(class) == Decision::Show);
    if shown {
        request(ctx).reveals.record(customer_id, field);
    }
}

/// The masked form of a resolved value, of the same GraphQL type. Null stays null; lists
/// are masked item by item.
pub fn mask_value(format: Option<policy::MaskFormat>, value: Value) -> Value {
    use policy::MaskFormat as F;
    match (format, value) {
        (_, Value::Null) => Value::Null,
        (Some(F::Keep), value) => value,
        (format, Value::List(items)) => Value::List(items.into_iter().map(|v| mask_value(format, v)).collect()),
        (Some(F::Email), Value::String(s)) => Value::String(mask::email(&s)),
        (Some(F::Phone), Value::String(s)) => Value::String(mask::phone(&s)),
        (Some(F::Initials), Value::String(s)) => Value::String(mask::initials(&s)),
        // An address keeps its unclassified parts (city, country); its classified parts
        // are masked one by one as they resolve.
        (Some(F::CityCountry), object @ Value::Object(_)) => object,
        _ => Value::Null,
    }
}

/// `visible` functions for fields, one per class: a hidden class is left out of
/// introspection. (Named after the class, as `#[class(..)]` refers to them.)
pub mod visible {
    use super::*;

    fn shown(ctx: &Context<'_>, class: policy::PrivacyClass) -> bool {
        ctx.data_opt::<Access>().is_some_and(|a| !a.hides(class))
    }

    macro_rules! visible_fns {
        ($($name:ident => $class:ident),* $(,)?) => {
            $(
                #[doc = concat!("Visible unless the policy hides `", stringify!($name), "` from the viewer.")]
                pub fn $name(ctx: &Context<'_>) -> bool {
                    shown(ctx, policy::PrivacyClass::$class)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MaskFormat as F;

    #[test]
    fn masks_keep_the_type() {
        let s = |v: &str| Value::String(v.into());
        assert_eq!(mask_value(Some(F::Email), s("jane.doe@example.com")), s("j***@example.com"));
        assert_eq!(mask_value(Some(F::Remove), s("1984-05-12")), Value::Null);
        assert_eq!(mask_value(Some(F::Keep), Value::from(1984)), Value::from(1984));
        assert_eq!(mask_value(Some(F::Email), Value::Null), Value::Null);
        assert_eq!(mask_value(None, s("secret")), Value::Null);
        // A string format never turns another type into a string.
        assert_eq!(mask_value(Some(F::Phone), Value::from(42)), Value::Null);
    }
}
