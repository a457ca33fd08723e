//! Errors clients see: a safe message and a SCREAMING_SNAKE `extensions.code`.
//! Internal causes (SQL errors, I/O) are logged once where they happen and never sent.

use async_graphql::ErrorExtensions;

use crate::names::DbName;

/// An error a GraphQL client may see.
///
/// Deliberately not `Display`: async-graphql converts any `Display` error into a GraphQL
/// error without `extensions.code`; this way every conversion goes through ours.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// An `id` argument that is not one of our opaque ids (or of the wrong type).
    InvalidId(String),
    /// An `after` cursor that this field did not hand out.
    InvalidCursor,
    /// `first` outside 1..=max.
    PageSizeOutOfRange { got: i32, max: i32 },
    /// An argument that is malformed in another way.
    BadInput(String),
    /// A lookup that matches several customers where the caller asked for one.
    AmbiguousMatch(&'static str),
    /// The token lacks a scope this operation needs.
    Forbidden(&'static str),
    /// Only admins may do this.
    AdminOnly,
    /// Only admins and agents (the staff who work the alert inbox) may do this.
    StaffOnly,
    /// A customer export holds every class of data; the token does not see these (named,
    /// comma-separated), so it may not export (a partial export would pass for a whole one).
    ExportIncomplete(String),
    /// The audit log cannot record what the response would reveal, so it is withheld.
    AuditUnavailable,
    /// A source database failed or timed out; the rest of the response may still stand.
    SourceUnavailable(DbName),
    /// A source's statement ran past its statement timeout.
    SourceTimeout(DbName),
    /// Insights are asked for before the first fit of the models (`c360 fit`).
    ModelNotReady,
    /// Another replica is refreshing the insights right now.
    RefreshRunning,
    /// Aggregates over every customer, asked for by a token that sees some customers only
    /// (a partner's: consenting customers).
    WholePopulation,
    /// A filtered list that would show fewer customers than `insights.min_group_size` (k)
    /// to a viewer who may not see who customers are: refused as an aggregate of so few
    /// is withheld.
    GroupTooSmall(i64),
    /// Something that should not happen; the details are in the server log.
    Internal,
}

impl ApiError {
    /// The message clients see; never contains internal details.
    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::InvalidId(id) => format!("`{id}` is not a valid id"),
            ApiError::InvalidCursor => "`after` is not a valid cursor for this list".into(),
            ApiError::PageSizeOutOfRange { got, max } => format!("`first` must be between 0 and {max}, got {got}"),
            ApiError::BadInput(message) => message.clone(),
            ApiError::AmbiguousMatch(what) => format!("{what} matches more than one customer"),
            ApiError::Forbidden(scope) => format!("this needs the scope `{scope}`"),
            ApiError::AdminOnly => "only admins may do this".into(),
            ApiError::StaffOnly => "only admins and agents may do this".into(),
            ApiError::ExportIncomplete(classes) => format!(
                "an export holds every class of a customer's data; this token does not see {classes} (see the scopes the policy requires)"
            ),
            ApiError::AuditUnavailable => {
                "the audit log is unavailable, so personal data cannot be shown; try again later".into()
            }
            ApiError::SourceUnavailable(db) => format!("the {db} source is unavailable"),
            ApiError::SourceTimeout(db) => format!("the {db} source did not answer in time"),
            ApiError::ModelNotReady => "the insight models have not been fitted yet; try again after a fit".into(),
            ApiError::RefreshRunning => "another replica is refreshing the insights; try again when it is done".into(),
            ApiError::WholePopulation => {
                "this aggregates every customer; a token that sees some customers only cannot ask for it".into()
            }
            ApiError::GroupTooSmall(k) => {
                format!("this filter matches fewer than {k} customers, too few to list for this token")
            }
            ApiError::Internal => "internal error".into(),
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidId(_) => "INVALID_ID",
            ApiError::InvalidCursor => "INVALID_CURSOR",
            ApiError::GroupTooSmall(_) => "GROUP_TOO_SMALL",
            ApiError::PageSizeOutOfRange { .. } => "PAGE_SIZE_OUT_OF_RANGE",
            ApiError::BadInput(_) => "BAD_USER_INPUT",
            ApiError::AmbiguousMatch(_) => "AMBIGUOUS_MATCH",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::AdminOnly | ApiError::StaffOnly => "FORBIDDEN",
            ApiError::ExportIncomplete(_) => "FORBIDDEN",
            ApiError::AuditUnavailable => "AUDIT_UNAVAILABLE",
            ApiError::SourceUnavailable(_) => "SOURCE_UNAVAILABLE",
            ApiError::SourceTimeout(_) => "SOURCE_TIMEOUT",
            ApiError::ModelNotReady => "MODEL_NOT_READY",
            ApiError::RefreshRunning => "REFRESH_RUNNING",
            ApiError::WholePopulation => "FORBIDDEN",
            ApiError::Internal => "INTERNAL",
        }
    }

    /// Logs a database error with its source and turns it into the client's view.
    pub(crate) fn from_sql(db: DbName, error: &sqlx::Error) -> Self {
        // How the engine reports a statement past its timeout (`statement_timed_out`).
        if let Some(why) = Refused::of(error) {
            tracing::debug!(db = %db, why = %why, "statement refused without reaching the source");
            return ApiError::SourceUnavailable(db);
        }
        if matches!(error, sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut) {
            tracing::warn!(db = %db, "a source statement ran past its timeout");
            return ApiError::SourceTimeout(db);
        }
        tracing::error!(db = %db, error = %error, "source query failed");
        ApiError::SourceUnavailable(db)
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message()).extend_with(|_, e| {
            e.set("code", self.code());
            if let ApiError::SourceUnavailable(db) | ApiError::SourceTimeout(db) = self {
                e.set("source", db.to_string());
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}

/// Why a statement was refused without reaching its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// The source's breaker is open (or half-open with its one trial running).
    #[error("the source's circuit breaker is open")]
    Open,
    /// As many statements already wait for a connection as the bulkhead allows.
    #[error("too many statements wait for the source")]
    Busy,
}

impl Refused {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refused::Open => "open",
            Refused::Busy => "busy",
        }
    }

    /// The refusal of a statement that never ran, as the error its caller handles.
    pub(crate) fn into_sql(self) -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, self))
    }

    /// The refusal inside `error`, if `error` is one.
    pub(crate) fn of(error: &sqlx::Error) -> Option<Refused> {
        match error {
            sqlx::Error::Io(e) => e.get_ref().and_then(|inner| inner.downcast_ref::<Refused>()).copied(),
            _ => None,
        }
    }
}
