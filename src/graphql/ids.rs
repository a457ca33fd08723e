//! Opaque global ids (`node(id:)`) and pagination cursors. Both are URL-safe base64 of a
//! typed string, so clients treat them as opaque and we can change them later.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// The kinds of object `node(id:)` can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
pub enum Kind {
    Customer,
    Order,
    Ticket,
    Campaign,
}

/// Encodes a global id.
pub fn global_id(kind: Kind, key: &str) -> async_graphql::ID {
    async_graphql::ID(URL_SAFE_NO_PAD.encode(format!("{kind}:{key}")))
}

/// Decodes a global id into its kind and key; any malformed id is `INVALID_ID`.
pub fn parse_global_id(id: &str) -> Result<(Kind, String), ApiError> {
    let invalid = || ApiError::InvalidId(truncate(id));
    let bytes = URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (kind, key) = text.split_once(':').ok_or_else(invalid)?;
    let kind: Kind = kind.parse().map_err(|_| invalid())?;
    if key.is_empty() || key.len() > 64 {
        return Err(invalid());
    }
    Ok((kind, key.to_owned()))
}

/// Decodes a global id that must be of `kind`.
pub fn parse_id_of(kind: Kind, id: &str) -> Result<String, ApiError> {
    match parse_global_id(id)? {
        (k, key) if k == kind => Ok(key),
        _ => Err(ApiError::InvalidId(truncate(id))),
    }
}

/// Ids echoed in error messages are cut short: they are user input.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Cursor of a customer list: the golden id of the last customer seen.
pub fn customer_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("cu:{id}"))
}

pub fn parse_customer_cursor(cursor: &str) -> Result<String, ApiError> {
    let text = decode(cursor)?;
    let id = text.strip_prefix("cu:").ok_or(ApiError::InvalidCursor)?;
    uuid::Uuid::parse_str(id).map_err(|_| ApiError::InvalidCursor)?;
    Ok(id.to_owned())
}

/// Cursor of a ranked customer list: the last customer's rank key (exactly, as its
/// bits) and golden id.
pub fn ranked_cursor(key: f64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("rk:{:016x}:{id}", key.to_bits()))
}

pub fn parse_ranked_cursor(cursor: &str) -> Result<(f64, String), ApiError> {
    let text = decode(cursor)?;
    let rest = text.strip_prefix("rk:").ok_or(ApiError::InvalidCursor)?;
    let (bits, id) = rest.split_once(':').ok_or(ApiError::InvalidCursor)?;
    let key = u64::from_str_radix(bits, 16).map(f64::from_bits).map_err(|_| ApiError::InvalidCursor)?;
    uuid::Uuid::parse_str(id).map_err(|_| ApiError::InvalidCursor)?;
    if !key.is_finite() {
        return Err(ApiError::InvalidCursor);
    }
    Ok((key, id.to_owned()))
}

/// Cursor of a partner's customer list: the CRM key the last customer was listed under.
pub fn consent_cursor(crm_key: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cc:{crm_key}"))
}

pub fn parse_consent_cursor(cursor: &str) -> Result<i64, ApiError> {
    let text = decode(cursor)?;
    text.strip_prefix("cc:").and_then(|k| k.parse().ok()).ok_or(ApiError::InvalidCursor)
}

/// Cursor of the audit log: the id of the last entry seen.
pub fn audit_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("au:{id}"))
}

pub fn parse_audit_cursor(cursor: &str) -> Result<i64, ApiError> {
    let text = decode(cursor)?;
    text.strip_prefix("au:").and_then(|k| k.parse().ok()).ok_or(ApiError::InvalidCursor)
}

/// Cursor of a newest-first list: the time and id of the last row seen, tagged with the
/// list it belongs to so a cursor of one list is refused by another.
pub fn time_cursor(tag: &str, at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}:{}:{id}", at.timestamp()))
}

pub fn parse_time_cursor(tag: &str, cursor: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let text = decode(cursor)?;
    let mut parts = text.split(':');
    let (Some(t), Some(secs), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::InvalidCursor);
    };
    if t != tag {
        return Err(ApiError::InvalidCursor);
    }
    let secs: i64 = secs.parse().map_err(|_| ApiError::InvalidCursor)?;
    let id: i64 = id.parse().map_err(|_| ApiError::InvalidCursor)?;
    let at = DateTime::from_timestamp(secs, 0).ok_or(ApiError::InvalidCursor)?;
    Ok((at, id))
}

fn decode(cursor: &str) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).map_err(|_| ApiError::InvalidCursor)?;
    String::from_utf8(bytes).map_err(|_| ApiError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_kinds() {
        let id = global_id(Kind::Order, "1000000101");
        assert_eq!(parse_global_id(&id).ok(), Some((Kind::Order, "1000000101".into())));
        assert!(parse_id_of(Kind::Customer, &id).is_err());
        for bad in ["", "!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("Planet:1"), &URL_SAFE_NO_PAD.encode("Order:")] {
            assert!(parse_global_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_belong_to_one_list() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let c = time_cursor("o", at, 42);
        assert_eq!(parse_time_cursor("o", &c).ok(), Some((at, 42)));
        assert!(parse_time_cursor("t", &c).is_err());
        assert!(parse_customer_cursor(&c).is_err());
        assert!(parse_time_cursor("o", "garbage").is_err());
    }
}
