//! How each database is doing, kept where its statements pass: a circuit breaker
//! (failsafe's state machine over the success rate of a sliding window), a bulkhead (a
//! bound on the statements waiting for a connection) and the outcome of a background
//! ping. A source whose breaker is open costs a statement a lock and no wait: its fields
//! answer `SOURCE_UNAVAILABLE` at once, and `/readyz` reads these states without asking
//! any database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use failsafe::backoff::{self, Constant};
use failsafe::failure_policy::{self, SuccessRateOverTimeWindow};
use failsafe::{Config as BreakerBuilder, Instrument, StateMachine};

use crate::config::BreakerConfig;
use crate::error::Refused;
use crate::names::DbName;

/// A breaker's state, as `c360_source_breaker_state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl BreakerState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => BreakerState::Closed,
            1 => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }
}

/// failsafe's hooks on each transition: the state kept for readers, and a log line.
struct Transitions {
    db: DbName,
    state: Arc<AtomicU8>,
    open: Duration,
}

impl Transitions {
    fn set(&self, state: BreakerState) -> BreakerState {
        BreakerState::from_u8(self.state.swap(state as u8, Ordering::AcqRel))
    }
}

impl Instrument for Transitions {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        self.set(BreakerState::Open);
        tracing::warn!(db = %self.db, open_for = ?self.open, "circuit breaker opened: the source's statements fail at once");
    }

    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
        tracing::info!(db = %self.db, "circuit breaker half-open: one statement tries the source");
    }

    fn on_closed(&self) {
        if self.set(BreakerState::Closed) != BreakerState::Closed {
            tracing::info!(db = %self.db, "circuit breaker closed: the source answers again");
        }
    }
}

type Breaker = StateMachine<SuccessRateOverTimeWindow<Constant>, Transitions>;

/// One database's health.
pub(crate) struct Health {
    breaker: Breaker,
    state: Arc<AtomicU8>,
    /// A half-open breaker's one trial is running: others are refused meanwhile (failsafe
    /// would let every statement through to a source that may still hang).
    trying: AtomicBool,
    /// Statements running or waiting for a connection (the pool's size plus the queue).
    slots: tokio::sync::Semaphore,
    /// Whether the last background health check found the database answering.
    answers: AtomicBool,
    /// When a statement last got an answer (success, or an error the database gave),
    /// in milliseconds since `born`.
    answered_at: AtomicU64,
    born: Instant,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("state", &self.state()).field("answers", &self.answers()).finish()
    }
}

impl Health {
    /// The health of `db`, whose pool holds `connections`, with at most `waiting` more
    /// statements waiting for one.
    pub(crate) fn new(db: DbName, breaker: &BreakerConfig, connections: u32, waiting: u32) -> Self {
        let state = Arc::new(AtomicU8::new(BreakerState::Closed as u8));
        let transitions = Transitions { db, state: state.clone(), open: breaker.open };
        let policy = failure_policy::success_rate_over_time_window(
            (1.0 - breaker.error_rate).clamp(0.0, 1.0),
            breaker.requests,
            // failsafe divides the window into five slices of whole milliseconds.
            breaker.window.max(Duration::from_millis(10)),
            backoff::constant(breaker.open),
        );
        let slots = connections.saturating_add(waiting).max(1) as usize;
        Health {
            breaker: BreakerBuilder::new().failure_policy(policy).instrument(transitions).build(),
            state,
            trying: AtomicBool::new(false),
            slots: tokio::sync::Semaphore::new(slots),
            answers: AtomicBool::new(true),
            answered_at: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Whether a statement got an answer from the database within `recently`: then
    /// the health check need not ping it (and does not wait for a connection of a
    /// saturated pool, which would take a busy database for a silent one).
    pub(crate) fn answered_within(&self, recently: Duration) -> bool {
        let at = Duration::from_millis(self.answered_at.load(Ordering::Acquire));
        at > Duration::ZERO && self.born.elapsed().saturating_sub(at) <= recently
    }

    /// A statement's pass to its database, or why it may not go.
    pub(crate) fn admit(&self) -> Result<Pass<'_>, Refused> {
        if !self.breaker.is_call_permitted() {
            return Err(Refused::Open);
        }
        let trial = self.state() == BreakerState::HalfOpen;
        if trial && self.trying.swap(true, Ordering::AcqRel) {
            return Err(Refused::Open);
        }
        // Made before the slot is asked for: dropped on refusal, it ends the trial.
        let mut pass = Pass { health: self, trial, slot: None };
        pass.slot = Some(self.slots.try_acquire().map_err(|_| Refused::Busy)?);
        Ok(pass)
    }

    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn answers(&self) -> bool {
        self.answers.load(Ordering::Acquire)
    }

    /// Up: the last ping was answered and the breaker is not open. An open breaker whose
    /// time is up turns half-open here, not only at the next statement: a replica whose
    /// readiness or metrics said "down" would otherwise stay down while no statement came
    /// (a load balancer sends none to a replica it took out).
    pub(crate) fn up(&self) -> bool {
        let _ = self.breaker.is_call_permitted();
        self.answers() && self.state() != BreakerState::Open
    }

    /// The outcome of a background ping.
    pub(crate) fn pinged(&self, db: DbName, answered: bool) {
        if self.answers.swap(answered, Ordering::AcqRel) != answered {
            if answered {
                tracing::info!(db = %db, "the database answers its health check again");
            } else {
                tracing::warn!(db = %db, "the database does not answer its health check");
            }
        }
    }
}

/// Whether `error` says the source is unreachable or too slow (the breaker counts it), as
/// opposed to a statement the database answered with an error.
fn is_outage(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// A statement's way to its database: a slot of the bulkhead, and the breaker's
/// permission, given back when dropped.
pub(crate) struct Pass<'a> {
    health: &'a Health,
    trial: bool,
    slot: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl Pass<'_> {
    /// Tells the breaker how the statement went.
    pub(crate) fn record<T>(self, result: &Result<T, sqlx::Error>) {
        match result {
            Err(e) if is_outage(e) => self.health.breaker.on_error(),
            _ => {
                self.health.breaker.on_success();
                let now = u64::try_from(self.health.born.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
                self.health.answered_at.store(now, Ordering::Release);
            }
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.trial {
            self.health.trying.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(open: Duration) -> BreakerConfig {
        BreakerConfig { requests: 4, error_rate: 0.5, window: Duration::from_millis(10), open }
    }

    fn timeout() -> Result<(), sqlx::Error> {
        Err(sqlx::Error::PoolTimedOut)
    }

    #[test]
    fn a_failing_source_is_refused_at_once_then_tried_by_one_statement() {
        let health = Health::new(DbName::Helpdesk, &config(Duration::from_millis(50)), 2, 2);
        // The window has to pass once before the breaker may open.
        std::thread::sleep(Duration::from_millis(15));
        for _ in 0..4 {
            health.admit().expect("closed").record(&timeout());
        }
        assert_eq!(health.state(), BreakerState::Open);
        assert!(!health.up());
        assert_eq!(health.admit().err(), Some(Refused::Open));
        std::thread::sleep(Duration::from_millis(60));
        // Half-open: one trial at a time.
        let trial = health.admit().expect("a trial");
        assert_eq!(health.state(), BreakerState::HalfOpen);
        assert_eq!(health.admit().err(), Some(Refused::Open));
        trial.record(&Ok::<_, sqlx::Error>(()));
        assert_eq!(health.state(), BreakerState::Closed);
        assert!(health.admit().is_ok());
    }

    #[test]
    fn a_database_that_answered_statements_lately_needs_no_ping() {
        let health = Health::new(DbName::Crm, &config(Duration::from_secs(30)), 2, 2);
        assert!(!health.answered_within(Duration::from_secs(2)), "nothing answered yet");
        health.admit().expect("closed").record(&timeout());
        assert!(!health.answered_within(Duration::from_secs(2)), "a timeout is no answer");
        health.admit().expect("closed").record(&Err::<(), _>(sqlx::Error::RowNotFound));
        assert!(health.answered_within(Duration::from_secs(2)), "an error the database gave is one");
        std::thread::sleep(Duration::from_millis(30));
        assert!(!health.answered_within(Duration::from_millis(10)));
    }

    #[test]
    fn errors_the_database_answered_do_not_open_the_breaker() {
        let health = Health::new(DbName::Shop, &config(Duration::from_secs(30)), 2, 2);
        std::thread::sleep(Duration::from_millis(15));
        for _ in 0..20 {
            health.admit().expect("closed").record(&Err::<(), _>(sqlx::Error::RowNotFound));
        }
        assert_eq!(health.state(), BreakerState::Closed);
    }

    #[test]
    fn the_bulkhead_bounds_statements_waiting() {
        let health = Health::new(DbName::Crm, &config(Duration::from_secs(30)), 1, 1);
        let (a, b) = (health.admit().expect("runs"), health.admit().expect("waits"));
        assert_eq!(health.admit().err(), Some(Refused::Busy));
        drop(a);
        assert!(health.admit().is_ok());
        drop(b);
    }

    #[test]
    fn a_refusal_survives_the_trip_through_sqlx_error() {
        assert_eq!(Refused::of(&Refused::Busy.into_sql()), Some(Refused::Busy));
        assert_eq!(Refused::of(&sqlx::Error::PoolTimedOut), None);
    }
}
