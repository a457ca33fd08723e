//! `c360 seed`: deterministic, realistic and messy demo data across the four sources,
//! with the ground truth (which record belongs to which person) in the hub store.
//!
//! Messiness, on purpose: emails differ in case and white space between systems; phones
//! are typed nationally or internationally in many formats; some shoppers are guests
//! with no CRM record; some people have a second shop account under a work email; some
//! CRM customers were entered twice; some couples share one email address; some helpdesk
//! requesters are strangers to every other system. Behaviour is plausible for analytics:
//! heavy, regular and light buyers, customers who stop buying, holiday peaks, seasonal
//! campaigns, and complaints that come with low satisfaction scores.

mod people;
mod rows;

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde::Serialize;

use crate::sources::{SourceName, Sources, SqlTrace};
use people::{Person, messy_email, person, seasonal_time, stream};

use crate::sources::midnight;
use rows::{
    Account, Campaign, Consent, Contact, CrmCustomer, Note, Order, OrderLine, Product, Requester, Rows, Send, Ticket,
    Truth,
};

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Demo people (customers); strangers and duplicates come on top.
    pub customers: u64,
    pub seed: u64,
    /// The "today" of the data set: orders and tickets lie in the three years before it.
    pub as_of: NaiveDate,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// Rows written per table.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SeedReport {
    pub(crate) people: u64,
    pub(crate) crm_customers: u64,
    pub(crate) shop_accounts: u64,
    pub(crate) orders: u64,
    pub(crate) order_lines: u64,
    pub(crate) requesters: u64,
    pub(crate) tickets: u64,
    pub(crate) contacts: u64,
    pub(crate) sends: u64,
    pub(crate) seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the CRM database already holds customers; seed into empty databases")]
    NotEmpty,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// People generated and written per round; bounds memory whatever the total.
const CHUNK: u64 = 5_000;

const CATEGORIES: [(&str, &[&str], i64, i64); 8] = [
    (
        "electronics",
        &["Wireless Headphones", "Smart Speaker", "USB-C Charger", "E-Reader", "Action Camera", "Fitness Tracker"],
        1_999,
        24_999,
    ),
    (
        "home",
        &["Espresso Maker", "Linen Duvet Cover", "Cast Iron Pan", "Desk Lamp", "Ceramic Vase", "Knife Set"],
        1_299,
        18_999,
    ),
    (
        "fashion",
        &["Merino Sweater", "Rain Jacket", "Leather Belt", "Canvas Sneakers", "Wool Scarf", "Denim Jeans"],
        1_499,
        14_999,
    ),
    (
        "sports",
        &["Yoga Mat", "Running Shoes", "Water Bottle", "Resistance Bands", "Cycling Gloves", "Tennis Racket"],
        999,
        15_999,
    ),
    ("beauty", &["Face Serum", "Shampoo Bar", "Hand Cream", "Perfume", "Lip Balm Set", "Hair Dryer"], 599, 8_999),
    ("toys", &["Building Blocks", "Puzzle 1000 pcs", "Plush Bear", "Board Game", "Wooden Train", "Kite"], 799, 6_999),
    (
        "books",
        &["Cookbook", "Travel Guide", "Crime Novel", "Garden Handbook", "Children's Atlas", "Poetry Collection"],
        899,
        3_999,
    ),
    (
        "garden",
        &["Pruning Shears", "Herb Planter", "Garden Hose", "Bird Feeder", "Solar Lights", "Watering Can"],
        999,
        7_999,
    ),
];

/// The products of the shop's catalogue.
fn catalogue() -> Vec<Product> {
    let mut out = Vec::new();
    for (c, (category, names, lo, hi)) in CATEGORIES.iter().enumerate() {
        for (n, name) in names.iter().enumerate() {
            for (v, variant) in ["", " Plus", " Mini", " Pro"].iter().enumerate() {
                let mut rng = stream(0, 9, (c * 100 + n * 10 + v) as u64);
                let price = (rng.random_range(*lo..*hi) / 100) * 100 + 99;
                out.push(Product {
                    sku: format!("{}-{:02}{}", &category[..3].to_uppercase(), n, v),
                    name: format!("{name}{variant}"),
                    category: (*category).to_owned(),
                    price_cents: price,
                });
            }
        }
    }
    out
}

/// Seasonal campaigns over the three years before `as_of`.
fn campaigns(as_of: NaiveDate) -> Vec<Campaign> {
    use chrono::Datelike;
    let seasons: [(&str, u32, u32, &str, &str); 8] = [
        ("New Year VIP Evening", 1, 10, "mail", "invitation"),
        ("Spring Sale", 3, 15, "email", "coupon"),
        ("Mother's Day Gifts", 5, 1, "push", "gift"),
        ("Summer Clearance", 7, 1, "email", "coupon"),
        ("Back to School", 8, 20, "sms", "coupon"),
        ("Autumn Newsletter", 10, 1, "email", "none"),
        ("Black Friday", 11, 24, "email", "coupon"),
        ("Christmas Gift Guide", 12, 5, "push", "gift"),
    ];
    let mut out = Vec::new();
    let mut id = 1;
    for year in as_of.year() - 3..=as_of.year() {
        for (name, month, day, channel, offer) in seasons {
            let Some(start) = NaiveDate::from_ymd_opt(year, month, day) else { continue };
            let start = midnight(start) + Duration::hours(9);
            if start > midnight(as_of) || start < midnight(as_of) - Duration::days(3 * 365) {
                continue;
            }
            out.push(Campaign {
                id,
                name: format!("{name} {year}"),
                channel: channel.to_owned(),
                offer_type: offer.to_owned(),
                starts_at: start,
                ends_at: start + Duration::days(14),
            });
            id += 1;
        }
    }
    out
}

impl Rows {
    fn truth(&mut self, source: SourceName, key: i64, person: u64) {
        self.truth.push(Truth { source: source.to_string(), source_key: key.to_string(), person_id: person as i64 });
    }
}

/// Seeds all four sources; the databases must be migrated and the CRM empty.
pub async fn seed(sources: &Sources, options: &SeedOptions) -> Result<SeedReport, SeedError> {
    let started = Instant::now();
    let trace = SqlTrace::default();
    if sources.crm().fetch_count(&trace, "select count(*) as n from customers", &[]).await? > 0 {
        return Err(SeedError::NotEmpty);
    }
    let as_of = midnight(options.as_of);
    let products = catalogue();
    let campaigns = campaigns(options.as_of);

    let reference = Rows { products: products.clone(), campaigns: campaigns.clone(), ..Rows::default() };
    reference.write(sources).await?;

    let bar = if options.progress { ProgressBar::new(options.customers) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} seeding {bar:40} {pos}/{len} people ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut report = SeedReport::default();
    // Strangers: helpdesk requesters no other system knows, 2% on top of the customers.
    let strangers = options.customers / 50;
    let total = options.customers + strangers;
    let mut start = 0;
    while start < total {
        let end = (start + CHUNK).min(total);
        let mut rows = Rows::default();
        for idx in start..end {
            let p = person(options.seed, idx, as_of);
            if idx < options.customers {
                generate(options.seed, &p, as_of, &products, &campaigns, &mut rows);
            } else {
                stranger(options.seed, &p, as_of, &mut rows);
            }
        }
        count(&mut report, &rows);
        rows.write(sources).await?;
        bar.inc(end.min(options.customers).saturating_sub(start.min(options.customers)));
        start = end;
    }
    bar.finish_and_clear();
    report.people = total;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn count(report: &mut SeedReport, rows: &Rows) {
    report.crm_customers += rows.crm_customers.len() as u64;
    report.shop_accounts += rows.accounts.len() as u64;
    report.orders += rows.orders.len() as u64;
    report.order_lines += rows.lines.len() as u64;
    report.requesters += rows.requesters.len() as u64;
    report.tickets += rows.tickets.len() as u64;
    report.contacts += rows.contacts.len() as u64;
    report.sends += rows.sends.len() as u64;
}

/// Keys: each record's id is derived from the person index, so ids are unique and stable.
fn crm_id(idx: u64) -> i64 {
    100_000 + idx as i64
}
fn crm_duplicate_id(idx: u64) -> i64 {
    50_000_000 + idx as i64
}
fn account_id(idx: u64, second: bool) -> i64 {
    10_000_000 + 2 * idx as i64 + i64::from(second)
}
fn requester_id(idx: u64, by_phone: bool) -> i64 {
    1 + 2 * idx as i64 + i64::from(by_phone)
}

fn generate(
    seed: u64,
    p: &Person,
    as_of: DateTime<Utc>,
    products: &[Product],
    campaigns: &[Campaign],
    rows: &mut Rows,
) {
    let mut rng = stream(seed, 2, p.idx);
    let idx = p.idx;
    // Every 200th person shares the previous person's email address: a couple.
    let shares_email = idx % 200 == 1;
    let email = if shares_email {
        let partner = person(seed, idx - 1, as_of);
        partner.email
    } else {
        p.email.clone()
    };
    let in_crm = rng.random_bool(0.9) || shares_email;
    let in_shop = !in_crm || rng.random_bool(0.7);
    let since = p.since;
    let updated = since + Duration::seconds(rng.random_range(0..86_400 * 30));
    let updated = updated.min(as_of);

    // Whether any system has the person's phone; only then can a phone call be placed
    // under their name (otherwise a helpdesk requester by phone is a stranger).
    let mut phone_known = false;
    if in_crm {
        let id = crm_id(idx);
        // Every 150th person gave the household's landline, which the previous person
        // (another member of the household) gave too.
        let phone = if idx % 150 == 2 {
            Some(person(seed, idx - 1, as_of).phone.international())
        } else {
            rng.random_bool(0.92).then(|| p.phone.international())
        };
        phone_known |= phone.is_some();
        let gender = (!p.gender.is_empty()).then(|| p.gender.to_owned());
        rows.crm_customers.push(CrmCustomer {
            id,
            first_name: p.first.clone(),
            last_name: p.last.clone(),
            email: messy_email(&email, &mut rng),
            phone,
            birth_date: rng.random_bool(0.8).then_some(p.birth_date),
            gender,
            street: Some(p.street.clone()),
            postal_code: Some(p.postal_code.clone()),
            city: p.city.into(),
            country: p.country.code.into(),
            created_at: since,
            updated_at: updated,
        });
        rows.truth(SourceName::Crm, id, idx);
        // 1% were entered twice: same name, the email typed differently, maybe no phone.
        if idx % 100 == 7 {
            let dup = crm_duplicate_id(idx);
            let phone = rng.random_bool(0.5).then(|| p.phone.typed(&mut rng));
            let created = since + Duration::days(rng.random_range(30..400));
            let created = created.min(as_of);
            rows.crm_customers.push(CrmCustomer {
                id: dup,
                first_name: p.first.to_uppercase(),
                last_name: p.last.clone(),
                email: email.to_uppercase(),
                phone,
                birth_date: None,
                gender: None,
                street: None,
                postal_code: None,
                city: p.city.into(),
                country: p.country.code.into(),
                created_at: created,
                updated_at: created,
            });
            rows.truth(SourceName::Crm, dup, idx);
        }
        for (partner, purpose, p_grant) in [("acme-insurance", Some("offers"), 0.15), ("northwind-travel", None, 0.10)]
        {
            if rng.random_bool(p_grant) {
                let granted = since + Duration::days(rng.random_range(0..200));
                let revoked = rng.random_bool(0.1).then(|| granted + Duration::days(rng.random_range(1..300)));
                rows.consents.push(Consent {
                    customer_id: id,
                    partner_id: partner.into(),
                    purpose: purpose.map(str::to_owned),
                    granted_at: granted.min(as_of),
                    revoked_at: revoked.map(|r| r.min(as_of)),
                });
            }
        }
        if rng.random_bool(0.1) {
            const NOTES: [&str; 6] = [
                "Prefers to be contacted by email, not by phone.",
                "Called about a delayed delivery; offered a 10% voucher.",
                "Interested in the loyalty programme, send details.",
                "Asked for invoices to go to the company address.",
                "Very happy with the in-store service in the last visit.",
                "Complained twice about packaging waste.",
            ];
            let author = ["m.keller", "s.dubois", "j.smith", "a.janssen"][rng.random_range(0..4)];
            rows.notes.push(Note {
                customer_id: id,
                author: author.into(),
                body: NOTES[rng.random_range(0..NOTES.len())].into(),
                created_at: seasonal_time(&mut rng, since, as_of),
            });
        }
    }

    if in_shop {
        let guest = !in_crm;
        let second = rng.random_bool(0.05);
        let typed = p.shop_email(&email, &mut rng);
        let mut accounts = vec![(account_id(idx, false), messy_email(&typed, &mut rng), since)];
        if second {
            // A second account under a work address; the phone is the same person's.
            let work = format!(
                "{}.{}{}@{}",
                people::ascii_slug(&p.first),
                people::ascii_slug(&p.last),
                idx,
                ["acme-corp.com", "globex.de", "initech.co.uk"][rng.random_range(0..3)]
            );
            let opened = seasonal_time(&mut rng, since, as_of);
            accounts.push((account_id(idx, true), work, opened));
        }
        // Buyer type: heavy, regular or light; some stop buying altogether.
        let orders_total = match rng.random_range(0..100) {
            0..10 => rng.random_range(12..40),
            10..45 => rng.random_range(4..12),
            _ => rng.random_range(1..4),
        };
        let churn_at = rng.random_bool(0.3).then(|| seasonal_time(&mut rng, since, as_of));
        for (n, (account, account_email, opened)) in accounts.iter().enumerate() {
            let phone = if n == 0 && rng.random_bool(0.05) { None } else { Some(p.phone.typed(&mut rng)) };
            phone_known |= phone.is_some();
            let name = p.written_name(&mut rng);
            rows.accounts.push(Account {
                id: *account,
                email: account_email.clone(),
                phone,
                name,
                country: p.country.code.into(),
                is_guest: guest,
                created_at: *opened,
                updated_at: *opened,
            });
            rows.truth(SourceName::Shop, *account, idx);
            let share = if accounts.len() == 1 {
                orders_total
            } else if n == 0 {
                orders_total * 2 / 3
            } else {
                orders_total - orders_total * 2 / 3
            };
            let until = churn_at.unwrap_or(as_of).max(*opened + Duration::hours(1));
            for k in 0..share.min(90) {
                let order_id = account * 100 + k as i64;
                let at = seasonal_time(&mut rng, *opened, until);
                let age = as_of - at;
                let status = if age < Duration::days(2) {
                    ["placed", "paid"][rng.random_range(0..2)]
                } else if age < Duration::days(6) {
                    "shipped"
                } else {
                    match rng.random_range(0..100) {
                        0..5 => "cancelled",
                        5..11 => "returned",
                        _ => "delivered",
                    }
                };
                let channel = match rng.random_range(0..100) {
                    0..55 => "web",
                    55..80 => "app",
                    80..95 => "store",
                    _ => "phone",
                };
                let mut total = 0;
                for line in 0..rng.random_range(1..5) {
                    let product = &products[rng.random_range(0..products.len())];
                    let quantity = if rng.random_bool(0.85) { 1 } else { rng.random_range(2..4) };
                    let unit = product.price_cents * p.country.fx_percent / 100;
                    total += unit * quantity;
                    rows.lines.push(OrderLine {
                        order_id,
                        line_no: line + 1,
                        sku: product.sku.clone(),
                        quantity,
                        unit_price_cents: unit,
                    });
                }
                let number = format!("SO-{}-{order_id}", chrono::Datelike::year(&at));
                rows.orders.push(Order {
                    id: order_id,
                    account_id: *account,
                    number,
                    ordered_at: at,
                    status: status.into(),
                    channel: channel.into(),
                    currency: p.country.currency.into(),
                    total_cents: total,
                    updated_at: at,
                });
            }
        }
    }

    // A third of people have been in touch with service.
    if rng.random_bool(0.3) {
        helpdesk(p, &email, phone_known, as_of, &mut rng, rows);
    }

    // Newsletter contacts: most CRM customers, a few guests; couples register once.
    if !shares_email && rng.random_bool(if in_crm { 0.55 } else { 0.1 }) {
        let contact = 1 + idx as i64;
        let created = since + Duration::days(rng.random_range(0..60));
        let created = created.min(as_of);
        let subscribed = rng.random_bool(0.9);
        rows.contacts.push(Contact {
            id: contact,
            email: messy_email(&email, &mut rng),
            first_name: p.first.clone(),
            subscribed,
            created_at: created,
            updated_at: created,
        });
        rows.truth(SourceName::Marketing, contact, idx);
        let engaged = rng.random_range(0.05..0.6);
        for campaign in campaigns {
            let (starts, channel) = (campaign.starts_at, campaign.channel.as_str());
            if starts < created || !rng.random_bool(0.45) {
                continue;
            }
            let send = contact * 64 + campaign.id;
            let sent = starts + Duration::minutes(rng.random_range(0..600));
            let delivered = rng.random_bool(0.96).then(|| sent + Duration::minutes(rng.random_range(1..30)));
            let opened = delivered
                .filter(|_| channel != "mail" && rng.random_bool(engaged))
                .map(|d| d + Duration::minutes(rng.random_range(5..4000)));
            let clicked =
                opened.filter(|_| rng.random_bool(0.3)).map(|o| o + Duration::seconds(rng.random_range(5..600)));
            let converted =
                clicked.filter(|_| rng.random_bool(0.25)).map(|c| c + Duration::minutes(rng.random_range(2..2000)));
            let unsubscribed = opened.filter(|_| rng.random_bool(0.01)).map(|o| o + Duration::seconds(30));
            let coupon =
                (campaign.offer_type == "coupon").then(|| format!("C{:02}-{:06X}", campaign.id, send % 0xFF_FFFF));
            let keep_future = |t: Option<DateTime<Utc>>| t.filter(|t| *t <= as_of);
            rows.sends.push(Send {
                id: send,
                campaign_id: campaign.id,
                contact_id: contact,
                sent_at: sent,
                delivered_at: keep_future(delivered),
                opened_at: keep_future(opened),
                clicked_at: keep_future(clicked),
                converted_at: keep_future(converted),
                unsubscribed_at: keep_future(unsubscribed),
                coupon_code: coupon,
            });
        }
    }
}

/// Tickets of one person, by email or phone (then a requester of its own each).
fn helpdesk(p: &Person, email: &str, phone_known: bool, as_of: DateTime<Utc>, rng: &mut impl Rng, rows: &mut Rows) {
    let mut requesters: Vec<(i64, i64)> = Vec::new();
    for _ in 0..rng.random_range(1..5) {
        let channel = ["email", "email", "chat", "phone", "phone", "social", "store"][rng.random_range(0..7)];
        let channel = if phone_known {
            channel
        } else if channel == "phone" {
            "email"
        } else {
            channel
        };
        let by_phone = phone_known && (channel == "phone" || channel == "store");
        let requester = requester_id(p.idx, by_phone);
        let tickets_so_far = match requesters.iter_mut().find(|(r, _)| *r == requester) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                requesters.push((requester, 0));
                0
            }
        };
        if tickets_so_far == 0 {
            let (em, ph) = if by_phone {
                (None, Some(p.phone.typed_international(rng)))
            } else {
                (Some(messy_email(email, rng)), None)
            };
            let created = seasonal_time(rng, p.since, as_of);
            rows.requesters.push(Requester {
                id: requester,
                email: em,
                phone: ph,
                name: p.written_name(rng),
                created_at: created,
                updated_at: created,
            });
            rows.truth(SourceName::Helpdesk, requester, p.idx);
        }
        ticket(requester, tickets_so_far, channel, p.since, as_of, rng, rows);
    }
}

/// The `n`th ticket of a requester (ids are derived from the requester's).
fn ticket(
    requester: i64,
    n: i64,
    channel: &str,
    since: DateTime<Utc>,
    as_of: DateTime<Utc>,
    rng: &mut impl Rng,
    rows: &mut Rows,
) {
    let id = requester * 16 + n;
    let (category, subjects): (&str, &[&str]) = match rng.random_range(0..100) {
        0..20 => (
            "complaint",
            &["Parcel arrived damaged", "Rude staff in store", "Wrong item delivered", "Order never arrived"],
        ),
        20..55 => (
            "inquiry",
            &[
                "Question about sizes",
                "Is this item back in stock?",
                "Opening hours at Christmas",
                "Gift wrapping options",
            ],
        ),
        55..70 => ("repair", &["Headphones stopped charging", "Zip broken after a week", "Lamp flickers"]),
        70..85 => ("return", &["Return label needed", "Refund not received yet", "Exchange for another size"]),
        _ => ("billing", &["Charged twice", "Invoice address wrong", "Voucher not applied"]),
    };
    let opened = seasonal_time(rng, since, as_of);
    let age = as_of - opened;
    let status = if age < Duration::days(3) {
        ["open", "pending"][rng.random_range(0..2)]
    } else if age < Duration::days(10) && rng.random_bool(0.2) {
        "pending"
    } else {
        ["solved", "closed"][rng.random_range(0..2)]
    };
    let closed =
        matches!(status, "solved" | "closed").then(|| opened + Duration::minutes(rng.random_range(30..14_400)));
    // Complaints come with low satisfaction; many never answer the survey.
    let csat = closed.filter(|_| rng.random_bool(0.6)).map(|_| match category {
        "complaint" => [1, 1, 2, 2, 3, 4][rng.random_range(0..6)],
        "billing" | "return" => [2, 3, 4, 4, 5][rng.random_range(0..5)],
        _ => [3, 4, 4, 5, 5, 5][rng.random_range(0..6)],
    });
    let priority = if category == "complaint" && rng.random_bool(0.4) {
        "high"
    } else {
        ["low", "normal", "normal", "normal", "high", "urgent"][rng.random_range(0..6)]
    };
    rows.tickets.push(Ticket {
        id,
        requester_id: requester,
        channel: channel.into(),
        category: category.into(),
        priority: priority.into(),
        status: status.into(),
        subject: subjects[rng.random_range(0..subjects.len())].into(),
        opened_at: opened,
        closed_at: closed.filter(|c| *c <= as_of),
        csat,
        updated_at: closed.unwrap_or(opened).min(as_of),
    });
}

/// A helpdesk requester no other system knows (a passer-by, a prospect).
fn stranger(seed: u64, p: &Person, as_of: DateTime<Utc>, rows: &mut Rows) {
    let mut rng = stream(seed, 3, p.idx);
    let requester = requester_id(p.idx, false);
    let created = seasonal_time(&mut rng, p.since, as_of);
    rows.requesters.push(Requester {
        id: requester,
        email: Some(messy_email(&p.email, &mut rng)),
        phone: None,
        name: format!("{} {}", p.first, p.last),
        created_at: created,
        updated_at: created,
    });
    rows.truth(SourceName::Helpdesk, requester, p.idx);
    for n in 0..rng.random_range(1..3) {
        ticket(requester, n, "email", p.since, as_of, &mut rng, rows);
    }
}
