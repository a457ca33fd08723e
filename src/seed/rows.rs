//! The seeder's rows, one type per table: a row knows its database, its table and its
//! columns (its fields, in order), so a value cannot drift away from its column.

use chrono::{DateTime, NaiveDate, Utc};

use crate::names::DbName;
use crate::sources::engine::insert_rows;
use crate::sources::{Arg, Sources};

/// One table's row type.
pub(crate) trait Row {
    const DB: DbName;
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    fn args(self) -> Vec<Arg>;
}

/// Declares each table's row type and `Rows`, the rows of one chunk per table.
macro_rules! tables {
    ($(
        $(#[$doc:meta])*
        $field:ident: $name:ident in $db:ident.$table:ident { $($col:ident: $ty:ty),* $(,)? }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone)]
            pub(crate) struct $name { $(pub $col: $ty),* }

            impl Row for $name {
                const DB: DbName = DbName::$db;
                const TABLE: &'static str = stringify!($table);
                const COLUMNS: &'static [&'static str] = &[$(stringify!($col)),*];
                fn args(self) -> Vec<Arg> {
                    vec![$(Arg::from(self.$col)),*]
                }
            }
        )*

        /// Rows of one chunk, per table.
        #[derive(Default)]
        pub(crate) struct Rows { $(pub $field: Vec<$name>),* }

        impl Rows {
            /// Writes the rows, one transaction per database, all databases at once.
            pub(crate) async fn write(self, sources: &Sources) -> Result<(), sqlx::Error> {
                let mut statements: [Vec<(String, Vec<Arg>)>; DbName::COUNT] = Default::default();
                $(statements[<$name as Row>::DB as usize].extend(statements_of(sources, self.$field));)*
                let writes = DbName::ALL.into_iter().zip(statements).filter(|(_, s)| !s.is_empty()).map(
                    |(db, s)| async move { sources.get(db).transaction(&s).await.map(|_| ()) },
                );
                futures::future::try_join_all(writes).await.map(|_| ())
            }
        }
    };
}

fn statements_of<R: Row>(sources: &Sources, rows: Vec<R>) -> Vec<(String, Vec<Arg>)> {
    insert_rows(sources.get(R::DB), R::TABLE, R::COLUMNS, rows.into_iter().map(Row::args).collect())
}

tables! {
    /// A CRM profile.
    crm_customers: CrmCustomer in Crm.customers {
        id: i64,
        first_name: String,
        last_name: String,
        email: String,
        phone: Option<String>,
        birth_date: Option<NaiveDate>,
        gender: Option<String>,
        street: Option<String>,
        postal_code: Option<String>,
        city: String,
        country: String,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
    /// A consent to share with a partner.
    consents: Consent in Crm.consents {
        customer_id: i64,
        partner_id: String,
        purpose: Option<String>,
        granted_at: DateTime<Utc>,
        revoked_at: Option<DateTime<Utc>>,
    }
    /// A service note on a profile.
    notes: Note in Crm.notes {
        customer_id: i64,
        author: String,
        body: String,
        created_at: DateTime<Utc>,
    }
    /// A product of the catalogue; prices in euro cents.
    products: Product in Shop.products {
        sku: String,
        name: String,
        category: String,
        price_cents: i64,
    }
    /// A shop account, a guest's or a registered customer's.
    accounts: Account in Shop.accounts {
        id: i64,
        email: String,
        phone: Option<String>,
        name: String,
        country: String,
        is_guest: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
    /// An order.
    orders: Order in Shop.orders {
        id: i64,
        account_id: i64,
        number: String,
        ordered_at: DateTime<Utc>,
        status: String,
        channel: String,
        currency: String,
        total_cents: i64,
        updated_at: DateTime<Utc>,
    }
    /// A line of an order.
    lines: OrderLine in Shop.order_lines {
        order_id: i64,
        line_no: i64,
        sku: String,
        quantity: i64,
        unit_price_cents: i64,
    }
    /// Someone who opened helpdesk tickets, by email or by phone.
    requesters: Requester in Helpdesk.requesters {
        id: i64,
        email: Option<String>,
        phone: Option<String>,
        name: String,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
    /// A helpdesk ticket.
    tickets: Ticket in Helpdesk.tickets {
        id: i64,
        requester_id: i64,
        channel: String,
        category: String,
        priority: String,
        status: String,
        subject: String,
        opened_at: DateTime<Utc>,
        closed_at: Option<DateTime<Utc>>,
        csat: Option<i64>,
        updated_at: DateTime<Utc>,
    }
    /// A marketing campaign.
    campaigns: Campaign in Marketing.campaigns {
        id: i64,
        name: String,
        channel: String,
        offer_type: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    }
    /// A newsletter contact.
    contacts: Contact in Marketing.contacts {
        id: i64,
        email: String,
        first_name: String,
        subscribed: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
    /// A campaign sent to a contact, and the contact's response.
    sends: Send in Marketing.sends {
        id: i64,
        campaign_id: i64,
        contact_id: i64,
        sent_at: DateTime<Utc>,
        delivered_at: Option<DateTime<Utc>>,
        opened_at: Option<DateTime<Utc>>,
        clicked_at: Option<DateTime<Utc>>,
        converted_at: Option<DateTime<Utc>>,
        unsubscribed_at: Option<DateTime<Utc>>,
        coupon_code: Option<String>,
    }
    /// The ground truth: which person a source record belongs to.
    truth: Truth in Hub.seed_truth {
        source: String,
        source_key: String,
        person_id: i64,
    }
}
