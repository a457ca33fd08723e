//! Mask formats: what a masked value looks like. Each keeps only what the format documents
//! and nothing that could be reversed (no lengths, no separators).

use async_graphql::Value;

use super::MaskFormat;

/// The masked form of a resolved value. Null stays null; lists are masked item by item.
pub fn apply(format: Option<MaskFormat>, value: Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::List(items) => Value::List(items.into_iter().map(|v| apply(format, v)).collect()),
        Value::String(s) => match format {
            Some(MaskFormat::Email) => Value::String(email(&s)),
            Some(MaskFormat::Phone) => Value::String(phone(&s)),
            Some(MaskFormat::Initials) => Value::String(initials(&s)),
            Some(MaskFormat::Year) => year(&s).map_or(Value::Null, Value::String),
            // An address keeps its unclassified parts (city, country); its classified
            // parts are masked one by one as they resolve.
            Some(MaskFormat::CityCountry) => Value::String(s),
            Some(MaskFormat::Remove) | None => Value::Null,
        },
        // Objects are masked through their own classified fields.
        object @ Value::Object(_) if format == Some(MaskFormat::CityCountry) => object,
        _ => Value::Null,
    }
}

/// `jane.doe@example.com` → `j***@example.com`.
pub fn email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The last four digits: `+4915123456789` → `***6789`.
pub fn phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***{last}")
}

/// `Jane Doe` → `J. D.`; `Ann-Kathrin` → `A.`
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1984-05-12` → `1984`.
pub fn year(date: &str) -> Option<String> {
    let year = date.split('-').next()?;
    (year.len() == 4 && year.chars().all(|c| c.is_ascii_digit())).then(|| year.to_owned())
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
        assert_eq!(year("1984-05-12").as_deref(), Some("1984"));
        assert_eq!(apply(Some(MaskFormat::Remove), Value::String("secret".into())), Value::Null);
        assert_eq!(apply(Some(MaskFormat::Email), Value::Null), Value::Null);
    }
}
