//! The source contract: the tables and columns c360 reads (and the few it writes) in each
//! source, with their types. A deployment can point c360 at views over its own schemas
//! as long as they fulfil it; `c360 check` reports, per source, what is missing or of the
//! wrong type. Each source module declares its own part (`CONTRACT`), next to its SQL.

use super::engine::{Arg, Database, Engine, SqlTrace};

/// A column's type, as far as c360 cares: how it decodes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Kind {
    /// An integer (`integer`, `bigint`, `int`, `smallint`).
    Integer,
    /// Text (`varchar`, `text`, `char`).
    Text,
    /// A point in time (`timestamptz`/`timestamp` on PostgreSQL, `datetime` on SQLite
    /// and MySQL), read as UTC.
    Timestamp,
    /// A calendar date (`date`).
    Date,
    /// A boolean (`boolean`; `tinyint(1)` on MySQL).
    Boolean,
}

impl Kind {
    /// Whether a column declared as `declared` on `engine` decodes as this kind.
    pub(crate) fn accepts(self, engine: Engine, declared: &str) -> bool {
        let t = declared.trim().to_ascii_lowercase();
        let base = t.split(['(', ' ']).next().unwrap_or_default();
        match self {
            Kind::Integer => {
                matches!(base, "integer" | "int" | "bigint" | "smallint" | "int2" | "int4" | "int8" | "mediumint")
            }
            Kind::Text => {
                matches!(base, "text" | "varchar" | "char" | "character" | "nvarchar" | "mediumtext" | "longtext")
                    || t.starts_with("character varying")
            }
            Kind::Timestamp => match engine {
                Engine::Postgres => base == "timestamptz" || t.starts_with("timestamp"),
                Engine::Sqlite | Engine::Mysql => matches!(base, "datetime" | "timestamp"),
            },
            Kind::Date => base == "date",
            Kind::Boolean => matches!(base, "boolean" | "bool") || (engine == Engine::Mysql && base == "tinyint"),
        }
    }
}

/// One table (or view) of a source, and the columns c360 uses.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub(crate) name: &'static str,
    /// What the table is for, in the README's words.
    pub(crate) about: &'static str,
    pub(crate) columns: &'static [(&'static str, Kind)],
}

/// What one source lacks of its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The table's name, and what it is for.
    MissingTable {
        table: &'static str,
        about: &'static str,
    },
    MissingColumn {
        table: &'static str,
        column: &'static str,
        kind: Kind,
    },
    WrongType {
        table: &'static str,
        column: &'static str,
        kind: Kind,
        found: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingTable { table, about } => write!(f, "table or view `{table}` is missing; it holds {about}"),
            Problem::MissingColumn { table, column, kind } => {
                write!(f, "`{table}.{column}` is missing (expected {kind})")
            }
            Problem::WrongType { table, column, kind, found } => {
                write!(f, "`{table}.{column}` is `{found}`, expected {kind}")
            }
        }
    }
}

crate::row! {
    /// A column as the database describes it.
    struct Column {
        name: String,
        declared: String,
    }
}

/// The columns of `table` as declared in `db` (views included); empty when it does not
/// exist.
async fn columns(db: &Database, table: &str) -> Result<Vec<Column>, sqlx::Error> {
    let sql = match db.engine {
        Engine::Sqlite => "select name, type as declared from pragma_table_info(?)",
        Engine::Postgres => {
            "select cast(column_name as text) as name, cast(data_type as text) as declared
             from information_schema.columns where table_schema = current_schema() and table_name = ?"
        }
        // MySQL's information_schema columns are binary on some servers: cast them.
        Engine::Mysql => {
            "select cast(column_name as char) as name, cast(column_type as char) as declared
             from information_schema.columns where table_schema = database() and table_name = ?"
        }
    };
    db.fetch_all(&SqlTrace::default(), sql, &[Arg::from(table)]).await
}

/// Checks `db` against `contract`; an empty list means it is fulfilled.
pub async fn check(db: &Database, contract: &[Table]) -> Result<Vec<Problem>, sqlx::Error> {
    let mut problems = Vec::new();
    for table in contract {
        let found = columns(db, table.name).await?;
        if found.is_empty() {
            problems.push(Problem::MissingTable { table: table.name, about: table.about });
            continue;
        }
        for &(column, kind) in table.columns {
            match found.iter().find(|c| c.name.eq_ignore_ascii_case(column)) {
                None => problems.push(Problem::MissingColumn { table: table.name, column, kind }),
                Some(c) if !kind.accepts(db.engine, &c.declared) => {
                    problems.push(Problem::WrongType { table: table.name, column, kind, found: c.declared.clone() })
                }
                Some(_) => {}
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::SourceName;

    #[test]
    fn the_readme_states_the_contract() {
        let readme = include_str!("../../README.md");
        for source in SourceName::ALL {
            for table in super::super::contract(source) {
                let head = format!("| {source} | `{}` | ", table.name);
                let row = readme.lines().find(|l| l.starts_with(&head)).unwrap_or_else(|| panic!("README: {head}"));
                let columns: Vec<String> = table.columns.iter().map(|(c, k)| format!("`{c}` {k}")).collect();
                assert!(row.contains(&columns.join(", ")), "README row of {source}.{}: {row}", table.name);
                assert!(row.ends_with(&format!("| {} |", table.about)), "README row of {source}.{}: {row}", table.name);
            }
        }
    }

    #[test]
    fn declared_types_are_read_per_engine() {
        assert!(Kind::Integer.accepts(Engine::Postgres, "bigint"));
        assert!(Kind::Text.accepts(Engine::Postgres, "character varying"));
        assert!(Kind::Text.accepts(Engine::Mysql, "varchar(320)"));
        assert!(Kind::Timestamp.accepts(Engine::Postgres, "timestamp with time zone"));
        assert!(Kind::Timestamp.accepts(Engine::Sqlite, "DATETIME"));
        assert!(Kind::Boolean.accepts(Engine::Mysql, "tinyint(1)"));
        assert!(!Kind::Boolean.accepts(Engine::Postgres, "smallint"));
        assert!(!Kind::Integer.accepts(Engine::Sqlite, "varchar(20)"));
        assert!(!Kind::Date.accepts(Engine::Mysql, "datetime"));
    }
}
