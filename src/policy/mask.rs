//! Mask formats on plain values: what a masked value looks like. Each keeps only what
//! the format documents and nothing that could be reversed (no lengths, no separators).

use chrono::{DateTime, Datelike, NaiveTime, Utc};

/// `jane.doe@example.com` → `j***@example.com`.
pub(crate) fn email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The last four digits: `+4915123456789` → `***6789`.
pub(crate) fn phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***{last}")
}

/// `Jane Doe` → `J. D.`; `Ann-Kathrin` → `A.`
pub(crate) fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first instant of the time's month (UTC): `2026-03-17T09:41:07Z` → `2026-03-01T00:00:00Z`.
pub(crate) fn month(at: DateTime<Utc>) -> DateTime<Utc> {
    let first = at.date_naive().with_day(1).unwrap_or(at.date_naive());
    first.and_time(NaiveTime::MIN).and_utc()
}

/// A count of days down to whole months of 30 days: 59 → 30.
pub(crate) fn whole_months(days: i32) -> i32 {
    days - days.rem_euclid(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_keep_only_what_they_document() {
        assert_eq!(email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(email("broken"), "***");
        assert_eq!(phone("+4915123456789"), "***6789");
        assert_eq!(phone("12"), "***12");
        assert_eq!(initials("Jane  van Doe"), "J. V. D.");
        assert_eq!(initials("émile"), "É.");
    }
}
