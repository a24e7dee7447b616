//! The core's one error type: a domain refusal (the caller's fault, with a clear message), an
//! authentication problem, or a storage failure (ours, logged, never shown in detail).

use kontor_domain::DomainError;
use kontor_store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Missing, unknown, expired or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failed logins; try again after the given time.
    #[error("too many failed logins; try again in {} seconds", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// Kontor is too busy to take this request now (password hashing or login slots saturated);
    /// nothing was done.
    #[error("busy; try again in {} seconds", .retry_after.as_secs())]
    Busy { retry_after: Duration },
    /// A deleted record asked for at its normal address.
    #[error("{entity} {id} is in the recycle bin")]
    InTrash { entity: String, id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    /// The same error, said of operation `i` of a client's batch.
    pub fn in_operation(self, i: usize) -> CoreError {
        match self {
            CoreError::Domain(d) => CoreError::Domain(d.in_operation(i)),
            CoreError::InTrash { entity, id } => CoreError::InTrash {
                entity: format!("operation {i}: {entity}"),
                id,
            },
            other => other,
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
