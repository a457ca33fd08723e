//! Demo people and the messy ways four systems wrote them down.
//!
//! Every person is generated from their own random stream (seed, person index), so a
//! chunk of people can be generated in any order or in parallel and the data set depends
//! only on the seed, the count and the as-of date.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use fake::Fake;
use fake::faker::address::raw::StreetName;
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::{DE_DE, EN, FR_FR};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A country the demo company sells in.
pub(crate) struct Country {
    pub(crate) code: &'static str,
    pub(crate) currency: &'static str,
    /// Price of one euro in this currency, in hundredths.
    pub(crate) fx_percent: i64,
    pub(crate) cities: &'static [&'static str],
    pub(crate) domains: &'static [&'static str],
}

pub(crate) const COUNTRIES: [(u32, Country); 5] = [
    (
        35,
        Country {
            code: "DE",
            currency: "EUR",
            fx_percent: 100,
            cities: &["Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart", "Leipzig", "Dresden"],
            domains: &["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.com"],
        },
    ),
    (
        20,
        Country {
            code: "GB",
            currency: "GBP",
            fx_percent: 86,
            cities: &["London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol"],
            domains: &["gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com"],
        },
    ),
    (
        15,
        Country {
            code: "FR",
            currency: "EUR",
            fx_percent: 100,
            cities: &["Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille"],
            domains: &["gmail.com", "orange.fr", "free.fr", "laposte.net"],
        },
    ),
    (
        10,
        Country {
            code: "NL",
            currency: "EUR",
            fx_percent: 100,
            cities: &["Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"],
            domains: &["gmail.com", "ziggo.nl", "kpnmail.nl", "outlook.com"],
        },
    ),
    (
        20,
        Country {
            code: "US",
            currency: "USD",
            fx_percent: 108,
            cities: &["New York", "Chicago", "San Francisco", "Austin", "Seattle", "Boston"],
            domains: &["gmail.com", "yahoo.com", "outlook.com", "icloud.com"],
        },
    ),
];

const US_AREAS: [&str; 20] = [
    "212", "646", "312", "773", "415", "628", "512", "737", "206", "425", "617", "857", "305", "786", "213", "310",
    "404", "678", "303", "720",
];

/// One demo person, as they really are (the systems then write them down imperfectly).
pub(crate) struct Person {
    pub(crate) idx: u64,
    pub(crate) first: String,
    pub(crate) last: String,
    pub(crate) country: &'static Country,
    /// The address the person uses everywhere (already unique per person).
    pub(crate) email: String,
    /// The mobile number, split so each system can format it its own way.
    pub(crate) phone: Phone,
    pub(crate) birth_date: NaiveDate,
    pub(crate) gender: &'static str,
    pub(crate) street: String,
    pub(crate) postal_code: String,
    pub(crate) city: &'static str,
    /// When the person first appeared at the company.
    pub(crate) since: DateTime<Utc>,
}

/// A phone number: country calling code and national significant number.
pub(crate) struct Phone {
    pub(crate) cc: &'static str,
    pub(crate) national: String,
    /// Written with a leading trunk 0 in national format (not in the US).
    pub(crate) trunk: bool,
}

impl Phone {
    /// `+49 151 23456789`
    pub(crate) fn international(&self) -> String {
        let (a, b) = self.national.split_at(3);
        format!("+{} {a} {b}", self.cc)
    }

    /// One of the many ways people type their number into a form, some national
    /// (needing the record's country to read), some international.
    pub(crate) fn typed(&self, rng: &mut impl Rng) -> String {
        let n = &self.national;
        let (a, b) = n.split_at(3);
        let trunk = if self.trunk { "0" } else { "" };
        match rng.random_range(0..7) {
            0 => format!("{trunk}{a} {b}"),
            // The international form with the trunk zero kept in brackets, as on many
            // European letterheads: `+49 (0)151 23456789`.
            6 if self.trunk => format!("+{} (0){a} {b}", self.cc),
            1 => format!("{trunk}{a}-{b}"),
            2 if self.cc == "1" => format!("({a}) {}-{}", &b[..3], &b[3..]),
            2 => format!("({trunk}{a}) {b}"),
            3 => format!("00{} {a} {b}", self.cc),
            4 => format!("+{}{n}", self.cc),
            _ => format!("+{}-{a}-{b}", self.cc),
        }
    }

    /// An international writing, for systems that do not know the caller's country.
    pub(crate) fn typed_international(&self, rng: &mut impl Rng) -> String {
        let (a, b) = self.national.split_at(3);
        match rng.random_range(0..3) {
            0 => format!("+{} {a} {b}", self.cc),
            1 => format!("00{}{a}{b}", self.cc),
            _ => format!("+{}{a}{b}", self.cc),
        }
    }
}

/// The random stream of one person (or any other indexed thing) for a seed.
pub(crate) fn stream(seed: u64, kind: u64, idx: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(kind.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ idx);
    rng
}

/// Names written the German way in ASCII: `Müller` → `Mueller`, `Größer` → `Groesser`
/// (other letters lose their accents: `Łukasz` → `Lukasz`).
pub(crate) fn transliterate(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        match ch {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'Ä' => out.push_str("Ae"),
            'Ö' => out.push_str("Oe"),
            'Ü' => out.push_str("Ue"),
            'ß' => out.push_str("ss"),
            c => out.push_str(deunicode::deunicode_char(c).unwrap_or("")),
        }
    }
    out
}

/// Maps names to the ASCII an email address can carry (`Müller` -> `mueller`).
pub(crate) fn ascii_slug(s: &str) -> String {
    let out: String = transliterate(s).to_lowercase().chars().filter(char::is_ascii_alphanumeric).collect();
    if out.is_empty() { "user".into() } else { out }
}

/// Names from beyond the fakers' lists, with letters forms and imports often mangle.
const UNICODE_NAMES: [(&str, &str); 10] = [
    ("Zoë", "Ólafsdóttir"),
    ("Łukasz", "Wałęsa"),
    ("Søren", "Kierkegård"),
    ("José", "Núñez"),
    ("Anaïs", "Lefèvre"),
    ("Jürgen", "Größer"),
    ("Thị Hà", "Nguyễn"),
    ("Jean-Pierre", "Dupont"),
    ("Çağla", "Öztürk"),
    ("Ines", "Schäfer-Brückner"),
];

impl Person {
    /// The person's name as another system wrote it down: mostly as is, else without its
    /// accents (`Muller`) or transliterated (`Mueller`), as forms and imports do.
    pub(crate) fn written_name(&self, rng: &mut impl Rng) -> String {
        let name = format!("{} {}", self.first, self.last);
        match rng.random_range(0..10) {
            0 => deunicode::deunicode(&name),
            1 => transliterate(&name),
            _ => name,
        }
    }

    /// The email address as a shop form took it: Gmail users often type their address
    /// with other dots, a `+tag` or the `googlemail.com` domain; Gmail delivers all of
    /// them to one mailbox.
    pub(crate) fn shop_email(&self, email: &str, rng: &mut impl Rng) -> String {
        let Some(local) = email.strip_suffix("@gmail.com") else { return email.to_owned() };
        match rng.random_range(0..10) {
            0 => format!("{}@gmail.com", local.replace('.', "")),
            1 => format!("{local}+shop@gmail.com"),
            2 => format!("{local}@googlemail.com"),
            _ => email.to_owned(),
        }
    }
}

/// A number that is unique per person: multiplication by a prime is a bijection
/// modulo any power of ten, so distinct indexes never share a phone number.
fn unique_digits(idx: u64, modulus: u64) -> u64 {
    (idx.wrapping_mul(7919) + 1) % modulus
}

pub(crate) fn person(seed: u64, idx: u64, as_of: DateTime<Utc>) -> Person {
    let mut rng = stream(seed, 1, idx);
    let mut pick = rng.random_range(0..100);
    let country = COUNTRIES
        .iter()
        .find(|(w, _)| {
            let hit = pick < *w;
            pick = pick.saturating_sub(*w);
            hit
        })
        .map(|(_, c)| c)
        .unwrap_or(&COUNTRIES[0].1);
    let (first, last): (String, String) = match country.code {
        "DE" => (FirstName(DE_DE).fake_with_rng(&mut rng), LastName(DE_DE).fake_with_rng(&mut rng)),
        "FR" => (FirstName(FR_FR).fake_with_rng(&mut rng), LastName(FR_FR).fake_with_rng(&mut rng)),
        _ => (FirstName(EN).fake_with_rng(&mut rng), LastName(EN).fake_with_rng(&mut rng)),
    };
    let (first, last) = if idx % 250 == 3 && idx > 0 {
        // Namesakes: another person of exactly the same name (nothing else in common).
        let other = person(seed, idx - 1, as_of);
        (other.first, other.last)
    } else if rng.random_bool(0.03) {
        let (f, l) = UNICODE_NAMES[rng.random_range(0..UNICODE_NAMES.len())];
        (f.to_owned(), l.to_owned())
    } else {
        (first, last)
    };
    let domain = country.domains[rng.random_range(0..country.domains.len())];
    let (f, l) = (ascii_slug(&first), ascii_slug(&last));
    // The person index makes every address unique; the pattern varies like real ones.
    let email = match rng.random_range(0..4) {
        0 => format!("{f}.{l}{idx}@{domain}"),
        1 => format!("{}{l}{idx}@{domain}", &f[..1]),
        2 => format!("{l}.{f}{idx}@{domain}"),
        _ => format!("{f}{idx}@{domain}"),
    };
    let phone = match country.code {
        "DE" => Phone {
            cc: "49",
            national: format!("15{}{:08}", [1, 2, 5, 7, 9][rng.random_range(0..5)], unique_digits(idx, 100_000_000)),
            trunk: true,
        },
        "GB" => Phone {
            cc: "44",
            national: format!("7{}{:08}", rng.random_range(4..10), unique_digits(idx, 100_000_000)),
            trunk: true,
        },
        "FR" => Phone { cc: "33", national: format!("6{:08}", unique_digits(idx, 100_000_000)), trunk: true },
        "NL" => Phone { cc: "31", national: format!("6{:08}", unique_digits(idx, 100_000_000)), trunk: true },
        _ => {
            let d = unique_digits(idx, 20 * 8_000_000);
            let area = US_AREAS[(d / 8_000_000) as usize];
            Phone { cc: "1", national: format!("{area}{}", 2_000_000 + d % 8_000_000), trunk: false }
        }
    };
    let age_days = rng.random_range(18 * 365..85 * 365);
    let birth_date = (as_of - Duration::days(age_days)).date_naive();
    let gender = match rng.random_range(0..100) {
        0..48 => "female",
        48..95 => "male",
        95..97 => "diverse",
        _ => "",
    };
    let street: String = match country.code {
        "DE" => StreetName(DE_DE).fake_with_rng(&mut rng),
        "FR" => StreetName(FR_FR).fake_with_rng(&mut rng),
        _ => StreetName(EN).fake_with_rng(&mut rng),
    };
    let number = rng.random_range(1..180);
    let street = match country.code {
        "DE" | "NL" => format!("{street} {number}"),
        _ => format!("{number} {street}"),
    };
    let postal_code = match country.code {
        "GB" => format!(
            "{}{} {}{}{}",
            ["SW", "NW", "E", "M", "B", "LS", "G", "BS"][rng.random_range(0..8)],
            rng.random_range(1..20),
            rng.random_range(1..10),
            (b'A' + rng.random_range(0..26u8)) as char,
            (b'A' + rng.random_range(0..26u8)) as char
        ),
        "NL" => format!(
            "{} {}{}",
            rng.random_range(1000..9999),
            (b'A' + rng.random_range(0..26u8)) as char,
            (b'A' + rng.random_range(0..26u8)) as char
        ),
        _ => format!("{:05}", rng.random_range(1000..99999)),
    };
    let city = country.cities[rng.random_range(0..country.cities.len())];
    // Customers joined over the last three years, a few more each year.
    let span = 3 * 365 * 24 * 3600;
    let ago = span - (rng.random_range(0.0f64..1.0).sqrt() * span as f64) as i64;
    let since = as_of - Duration::seconds(ago.max(3600));
    Person { idx, first, last, country, email, phone, birth_date, gender, street, postal_code, city, since }
}

/// Writes an address the way a careless form or import would: odd case, stray spaces.
pub(crate) fn messy_email(email: &str, rng: &mut impl Rng) -> String {
    match rng.random_range(0..5) {
        0 => email.to_uppercase(),
        1 => format!(" {email} "),
        2 => {
            let mut c = email.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        }
        3 => format!("{email}  "),
        _ => email.to_owned(),
    }
}

/// A random time between `from` and `to` (whole seconds), with November and December
/// twice as likely: people shop for the holidays.
pub(crate) fn seasonal_time(rng: &mut impl Rng, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let span = (to - from).num_seconds().max(1);
    for _ in 0..8 {
        let t = from + Duration::seconds(rng.random_range(0..span));
        if t.month() >= 11 || rng.random_bool(0.5) {
            return t;
        }
    }
    from + Duration::seconds(rng.random_range(0..span))
}
