//! `c360 import-transactions`: purchases from a file into the shop source, one shop
//! account per customer key and one order per row, so that the insight models can be
//! run on a shop's own history (or on the CDNOW research data).

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};

use super::cdnow;
use crate::sources::engine::insert_rows;
use crate::sources::{Arg, Sources, midnight};

/// The layouts `import-transactions` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CDNOW's master file (`customer_id date number_of_cds dollar_value`, with a header)
    /// or sample (`master_id sample_id date cds dollars`), whitespace-separated.
    Cdnow,
    /// A header `customer_key,date,amount[,quantity]`; dates `YYYY-MM-DD` or `YYYYMMDD`,
    /// amounts in currency units with at most two decimals.
    Csv,
}

/// One purchase of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// The shop account: the file's customer key, read as a number (`00004` is 4).
    pub(crate) account: i64,
    pub day: NaiveDate,
    pub cents: i64,
}

/// A file that could not be imported; names the line.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Parse(String),
    #[error("shop database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What an import wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Accounts new to the shop (accounts it already had keep their data).
    pub accounts: usize,
    pub orders: usize,
    pub(crate) first_day: Option<NaiveDate>,
    pub(crate) last_day: Option<NaiveDate>,
}

/// Reads the purchases of `text` in `format`.
pub fn parse(format: Format, text: &str) -> Result<Vec<Purchase>, ImportError> {
    match format {
        Format::Cdnow => cdnow::parse(text)
            .map_err(ImportError::Parse)?
            .into_iter()
            .map(|p| Ok(Purchase { account: account_key(&p.customer)?, day: p.day, cents: p.cents }))
            .collect(),
        Format::Csv => parse_csv(text),
    }
}

/// A customer key as a shop account id: the shop's accounts are numbered.
fn account_key(key: &str) -> Result<i64, ImportError> {
    key.trim().parse::<i64>().ok().filter(|k| *k >= 0).ok_or_else(|| {
        ImportError::Parse(format!("customer key {key:?} is not a shop account number (a non-negative integer)"))
    })
}

fn parse_csv(text: &str) -> Result<Vec<Purchase>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| ImportError::Parse(format!("header: {e}")))?.clone();
    let names: Vec<&str> = header.iter().collect();
    if names.len() < 3 || names[..3] != ["customer_key", "date", "amount"] || names.len() > 4 {
        return Err(ImportError::Parse("the header must be customer_key,date,amount[,quantity]".into()));
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let bad = |what: &str| ImportError::Parse(format!("line {line}: {what}"));
        let record = record.map_err(|e| bad(&e.to_string()))?;
        if !(3..=4).contains(&record.len()) {
            return Err(bad("expected customer_key,date,amount[,quantity]"));
        }
        let day = NaiveDate::parse_from_str(&record[1], "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(&record[1], "%Y%m%d"))
            .map_err(|_| bad("the date is not YYYY-MM-DD"))?;
        let cents = cdnow::cents(&record[2]).ok_or_else(|| bad("the amount is not a number with two decimals"))?;
        let account = account_key(&record[0]).map_err(|e| bad(&e.to_string()))?;
        out.push(Purchase { account, day, cents });
    }
    Ok(out)
}

/// Writes `purchases` into the shop: an account per key that is new (created on its
/// first purchase, no contact data), an order per purchase (delivered, in `currency`,
/// numbered `IMP-<id>`), in one transaction.
pub async fn import(sources: &Sources, purchases: &[Purchase], currency: &str) -> Result<Report, ImportError> {
    let shop = sources.shop();
    let trace = crate::sources::SqlTrace::default();
    let next: i64 = shop.fetch_count(&trace, "select coalesce(max(id), 0) as n from orders", &[]).await? + 1;
    let mut first: BTreeMap<i64, NaiveDate> = BTreeMap::new();
    for p in purchases {
        let day = first.entry(p.account).or_insert(p.day);
        *day = (*day).min(p.day);
    }
    let keys: Vec<i64> = first.keys().copied().collect();
    let mut known = std::collections::HashSet::new();
    for chunk in keys.chunks(10_000) {
        known.extend(crate::sources::shop::accounts(shop, &trace, chunk).await?.into_iter().map(|a| a.id));
    }
    let now = Utc::now();
    let accounts: Vec<Vec<Arg>> = first
        .iter()
        .filter(|(id, _)| !known.contains(id))
        .map(|(id, day)| {
            vec![
                Arg::from(*id),
                Arg::from(None::<String>),
                Arg::from(None::<String>),
                Arg::from(None::<String>),
                Arg::from(None::<String>),
                Arg::from(false),
                Arg::from(midnight(*day)),
                Arg::from(now),
            ]
        })
        .collect();
    let new_accounts = accounts.len();
    let orders: Vec<Vec<Arg>> = purchases
        .iter()
        .zip(next..)
        .map(|(p, id)| {
            vec![
                Arg::from(id),
                Arg::from(p.account),
                Arg::from(format!("IMP-{id}")),
                Arg::from(midnight(p.day)),
                Arg::from("delivered"),
                Arg::from("web"),
                Arg::from(currency),
                Arg::from(p.cents),
                Arg::from(now),
            ]
        })
        .collect();
    let account_columns = ["id", "email", "phone", "name", "country", "is_guest", "created_at", "updated_at"];
    let order_columns =
        ["id", "account_id", "number", "ordered_at", "status", "channel", "currency", "total_cents", "updated_at"];
    let mut statements = insert_rows(shop, "accounts", &account_columns, accounts);
    statements.extend(insert_rows(shop, "orders", &order_columns, orders));
    shop.transaction(&statements).await?;
    shop.analyze(&["accounts", "orders"]).await?;
    Ok(Report {
        accounts: new_accounts,
        orders: purchases.len(),
        first_day: purchases.iter().map(|p| p.day).min(),
        last_day: purchases.iter().map(|p| p.day).max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_shops_csv() {
        let text = "customer_key,date,amount,quantity\n00042,2024-03-01,19.90,2\n42,20240302,5\n";
        let purchases = parse(Format::Csv, text).expect("csv");
        let day = |d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("day");
        assert_eq!(
            purchases,
            [
                Purchase { account: 42, day: day("2024-03-01"), cents: 1990 },
                Purchase { account: 42, day: day("2024-03-02"), cents: 500 },
            ]
        );
    }

    #[test]
    fn names_the_line_that_is_wrong() {
        let error = |text: &str| parse(Format::Csv, text).expect_err("refused").to_string();
        assert!(error("key,date,amount\n1,2024-01-01,1\n").contains("header"));
        assert!(error("customer_key,date,amount\n1,2024-01-01,1\nx,2024-01-01,1\n").starts_with("line 3"));
        assert!(error("customer_key,date,amount\n1,01/02/2024,1\n").contains("YYYY-MM-DD"));
        assert!(error("customer_key,date,amount\n1,2024-01-01,1.234\n").contains("amount"));
        assert!(error("customer_key,date,amount\n1,2024-01-01\n").starts_with("line 2"));
    }
}
