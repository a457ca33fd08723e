//! The matching keys: normalised email addresses, E.164 phone numbers and name keys.
//! These are the only things records are ever matched on; names only guard merges.

use std::fmt;
use std::sync::LazyLock;

use phonenumber::country;
use quick_cache::sync::Cache;

/// An email address in the form records are matched on.
///
/// Rules, in order: surrounding white space is removed; the whole address is lowercased;
/// for Gmail (`gmail.com`, `googlemail.com`) dots in the local part and a `+tag` suffix are
/// ignored and the domain is `gmail.com`, because Gmail delivers all of those spellings to
/// one mailbox. No other provider's rules are applied: elsewhere `a.b@x` and `ab@x` can be
/// different people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EmailAddress(String);

impl EmailAddress {
    /// Normalises `raw`; `None` when it is not an address (`@` missing, empty parts, no dot
    /// in the domain, white space inside).
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let lowered = raw.trim().to_lowercase();
        let (local, domain) = lowered.rsplit_once('@')?;
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || lowered.chars().any(char::is_whitespace)
            || local.contains('@')
        {
            return None;
        }
        if domain == "gmail.com" || domain == "googlemail.com" {
            let local = local.split('+').next().unwrap_or(local).replace('.', "");
            if local.is_empty() {
                return None;
            }
            return Some(EmailAddress(format!("{local}@gmail.com")));
        }
        Some(EmailAddress(lowered))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+4915123456789`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number as typed. Numbers without a country code are read in `region`
    /// (the record's country, else the configured default). `None` when it is not a phone
    /// number or too short to identify anyone.
    pub(crate) fn parse(raw: &str, region: Option<&str>) -> Option<Self> {
        let raw = raw.trim();
        // `+44 (0)7700 900123`: the trunk zero in brackets is not dialled after a country
        // code (phonenumber keeps it for some countries).
        let without_trunk;
        let raw = if (raw.starts_with('+') || raw.starts_with("00")) && raw.contains("(0)") {
            without_trunk = raw.replace("(0)", "");
            without_trunk.as_str()
        } else {
            raw
        };
        if raw.chars().filter(char::is_ascii_digit).count() < 6 {
            return None;
        }
        // `00` is the international prefix nearly everywhere, and no national number
        // starts with it (not even in North America, whose prefix is `011`): read it as `+`.
        let international;
        let raw = match raw.strip_prefix("00") {
            Some(rest) => {
                international = format!("+{rest}");
                international.as_str()
            }
            None => raw,
        };
        // A number with its country code stands on its own. (phonenumber 0.3 misreads
        // some, e.g. `+49157..` with region US, when given a region anyway.)
        let region = if raw.starts_with('+') {
            None
        } else {
            region.and_then(|r| r.trim().to_ascii_uppercase().parse::<country::Id>().ok())
        };
        let number = phonenumber::parse(region, raw).ok()?;
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        // E.164 allows at most 15 digits after the plus.
        (e164.len() <= 16 && e164.len() >= 8).then_some(PhoneNumber(e164))
    }

    /// [`parse`](Self::parse), remembered: the request path shows the same numbers again
    /// and again, and parsing runs regular expressions (2% of a profile request's CPU).
    /// Bounded; for numbers read from the sources only, never for what a client typed
    /// (a faster answer would tell one viewer what another asked for).
    pub(crate) fn parse_cached(raw: &str, region: Option<&str>) -> Option<Self> {
        static PARSED: LazyLock<Cache<(String, String), Option<PhoneNumber>>> = LazyLock::new(|| Cache::new(20_000));
        let key = (raw.to_owned(), region.unwrap_or_default().to_owned());
        if let Some(parsed) = PARSED.get(&key) {
            return parsed;
        }
        let parsed = Self::parse(raw, region);
        PARSED.insert(key, parsed.clone());
        parsed
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name folded for comparison: lowercase, single spaces. Used only to refuse
/// merging two CRM records that share a key but name different people; never to match.
pub(crate) fn name_key(first: &str, last: &str) -> String {
    format!("{first} {last}").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A name's words as they compare: lowercase ASCII, accents dropped and the German
/// transliterations folded (`Müller`, `Mueller` and `Muller` all become `muller`), split at
/// spaces and hyphens (`Jean-Pierre` is `jean pierre`).
fn folded_words(name: &str) -> Vec<String> {
    deunicode::deunicode(name)
        .to_lowercase()
        .replace("ae", "a")
        .replace("oe", "o")
        .replace("ue", "u")
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether two folded names (see [`name_key`]) can be the same person: the same last
/// name, and first names equal or one the initial of the other (`a. lovelace`), whatever
/// the accents and transliterations. Used only as a veto: names never make a match.
pub(crate) fn names_compatible(a: &str, b: &str) -> bool {
    let (a, b) = (folded_words(a), folded_words(b));
    let (Some(last_a), Some(last_b)) = (a.last(), b.last()) else { return true };
    if last_a != last_b {
        return false;
    }
    match (a.len() > 1, b.len() > 1) {
        (true, true) => {
            let (fa, fb) = (a[0].trim_end_matches('.'), b[0].trim_end_matches('.'));
            fa == fb
                || (fa.chars().count() == 1 && fb.starts_with(fa))
                || (fb.chars().count() == 1 && fa.starts_with(fb))
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn emails_fold_case_space_and_gmail_spellings() {
        let e = |s| EmailAddress::parse(s).map(|e| e.0);
        assert_eq!(e("  Anna.Schmidt@Example.COM "), Some("anna.schmidt@example.com".into()));
        assert_eq!(e("anna.schmidt+shop@googlemail.com"), Some("annaschmidt@gmail.com".into()));
        // Dots matter outside Gmail.
        assert_eq!(e("anna.schmidt@web.de"), Some("anna.schmidt@web.de".into()));
        assert_eq!(e("anna.schmidt+x@web.de"), Some("anna.schmidt+x@web.de".into()));
        for bad in ["", "anna", "@example.com", "anna@", "anna@localhost", "an na@example.com", "a@b@c.de"] {
            assert_eq!(e(bad), None, "{bad}");
        }
    }

    /// The cache answers what parsing answers, per region: the same digits typed in two
    /// countries are two numbers.
    #[test]
    fn cached_phones_are_parsed_phones() {
        let cases = [("0151 23456789", "DE"), ("0151 23456789", "NL"), ("07700 900123", "GB"), ("not a phone", "DE")];
        for (raw, region) in cases.into_iter().chain(cases) {
            assert_eq!(
                PhoneNumber::parse_cached(raw, Some(region)),
                PhoneNumber::parse(raw, Some(region)),
                "{raw} {region}"
            );
        }
        assert_ne!(
            PhoneNumber::parse_cached("0151 23456789", Some("DE")),
            PhoneNumber::parse_cached("0151 23456789", Some("NL"))
        );
    }

    #[test]
    fn phones_become_e164_whatever_the_writing() {
        let p = |s, r| PhoneNumber::parse(s, r).map(|p| p.0);
        let want = Some("+4915123456789".to_string());
        assert_eq!(p("+49 151 23456789", None), want);
        assert_eq!(p("0049 151 2345 6789", Some("DE")), want);
        assert_eq!(p("0151-234 567 89", Some("DE")), want);
        assert_eq!(p("(0151) 23456789", Some("de")), want);
        assert_eq!(p("+49 (0)151 23456789", None), want, "the trunk zero in brackets");
        assert_eq!(p("001 212 4953788", Some("US")), Some("+12124953788".into()), "00 is international");
        assert_eq!(p("+44 (0)7700 900123", Some("DE")), Some("+447700900123".into()));
        assert_eq!(p("+49-151-23456789", Some("FR")), want, "a country code beats the region");
        assert_eq!(p("07700 900123", Some("GB")), Some("+447700900123".into()));
        assert_eq!(p("(415) 555-0134", Some("US")), Some("+14155550134".into()));
        assert_eq!(p("12", Some("DE")), None);
        assert_eq!(p("not a number", Some("DE")), None);
    }

    #[test]
    fn names_veto_only_clear_differences() {
        let ok = |a: &str, b: &str| names_compatible(&name_key("", a), &name_key("", b));
        assert!(ok("Ada Lovelace", "ADA  lovelace"));
        assert!(ok("A. Lovelace", "Ada Lovelace"));
        assert!(ok("Lovelace", "Ada Lovelace"));
        assert!(!ok("Byron Lovelace", "Ada Lovelace"));
        assert!(!ok("Ada Byron", "Ada Lovelace"));
        // The same name, as forms and imports write it.
        assert!(ok("Jürgen Müller", "Juergen Mueller"));
        assert!(ok("Jürgen Müller", "Jurgen Muller"));
        assert!(ok("Jean-Pierre Dupont", "Jean Pierre Dupont"));
        assert!(ok("Łukasz Wałęsa", "Lukasz Walesa"));
        assert!(ok("Thị Hà Nguyễn", "Thi Ha Nguyen"));
        assert!(!ok("Jürgen Müller", "Jürgen Möller"));
    }

    proptest! {
        #[test]
        fn email_normalisation_is_idempotent(local in "[a-zA-Z0-9._+-]{1,20}", domain in "(gmail|web|example|gmx)\\.(com|de)") {
            if let Some(once) = EmailAddress::parse(&format!(" {local}@{domain} ")) {
                prop_assert_eq!(EmailAddress::parse(once.as_str()), Some(once.clone()));
                prop_assert_eq!(once.as_str().to_lowercase(), once.as_str());
            }
        }

        #[test]
        fn phone_normalisation_is_idempotent(cc in "(49 15[12579]|49 1[67][0-9]|44 7[4-9]|33 6|31 6)", digits in "[0-9]{8}", sep in "[ -]?") {
            let raw = format!("+{cc}{sep}{digits}");
            let once = PhoneNumber::parse(&raw, None);
            prop_assert!(once.is_some(), "{raw} should parse");
            let once = once.unwrap_or_else(|| unreachable!());
            prop_assert_eq!(PhoneNumber::parse(once.as_str(), Some("US")), Some(once.clone()));
        }
    }
}
