//! The CDNOW purchase files (Fader & Hardie's research data, as the `lifetimes` package
//! ships them), in both published layouts: the master file's `customer_id date
//! number_of_cds dollar_value` (with a header line) and the sample's `master_id
//! sample_id date cds dollars`.

use chrono::NaiveDate;

/// One row: one purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// The customer's id as written in the file (the master id, e.g. `00004`).
    pub customer: String,
    /// The sample's own id (1..2357), in the sample layout.
    pub(crate) sample: Option<u32>,
    pub day: NaiveDate,
    /// The amount in cents, exactly as written (`29.33` → 2933).
    pub cents: i64,
}

/// The purchases of a CDNOW file; the error names the line that is not one.
pub fn parse(text: &str) -> Result<Vec<Purchase>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.is_empty() || (i == 0 && cells[0].parse::<u64>().is_err()) {
            continue; // a blank line, or the master file's header
        }
        let bad = || format!("line {}: not a CDNOW purchase row", i + 1);
        let (customer, sample, rest) = match cells.len() {
            4 => (cells[0], None, &cells[1..]),
            5 => (cells[0], Some(cells[1].parse().map_err(|_| bad())?), &cells[2..]),
            _ => return Err(bad()),
        };
        let day = NaiveDate::parse_from_str(rest[0], "%Y%m%d").map_err(|_| bad())?;
        rows.push(Purchase { customer: customer.to_owned(), sample, day, cents: cents(rest[2]).ok_or_else(bad)? });
    }
    Ok(rows)
}

/// `29.33` → 2933, without going through a float.
pub(crate) fn cents(amount: &str) -> Option<i64> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if fraction.len() > 2 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    let whole: i64 = whole.parse().ok()?;
    Some(whole * 100 + if whole < 0 { -fraction } else { fraction })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_layouts() {
        let sample = parse(" 00004 0001 19970101  2   29.33\n\n 00021 0002 19970102  1   11.77\n").expect("sample");
        assert_eq!(sample[0].customer, "00004");
        assert_eq!(sample[0].sample, Some(1));
        assert_eq!(sample[1].cents, 1177);
        let master = parse("customer_id date number_of_cds dollar_value\n00001 19970101 1 11.7\n").expect("master");
        assert_eq!((master[0].customer.as_str(), master[0].sample, master[0].cents), ("00001", None, 1170));
        assert!(parse("00001 19971301 1 11.77\n").is_err_and(|e| e.starts_with("line 1")));
        assert!(parse("00001 19970101 1 11.777\n").is_err());
    }
}
