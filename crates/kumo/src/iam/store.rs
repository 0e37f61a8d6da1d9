//! IAM's entities on disk: each [`Change`] is one row of `iam_entities`
//! written or deleted through the [`Store`]; at start everything is read
//! back into an [`IamState`].

use kumo_core::iam::{Change, IamState};

use crate::store::{Store, StoreError};

/// Why IAM's stored state could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IamStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("serialising an IAM entity: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Writes one change durably (committed before this returns).
pub async fn persist(store: &dyn Store, change: &Change) -> Result<(), IamStoreError> {
    match change.body() {
        Some(body) => store.put_iam_entity(change.kind(), &change.key(), &body?).await?,
        None => store.delete_iam_entity(change.kind(), &change.key()).await?,
    }
    Ok(())
}

/// Everything stored for `account`. Unreadable rows are skipped with an
/// error in the log rather than keeping the server from starting; expired
/// sessions stay until a later grant prunes them.
pub async fn load(store: &dyn Store, account: &str) -> Result<IamState, IamStoreError> {
    let mut state = IamState::new(account);
    let rows = store.load_iam_entities().await?;
    let count = rows.len();
    for (kind, key, body) in rows {
        match Change::from_stored(&kind, &key, &body) {
            Ok(change) => state.apply(change),
            Err(e) => tracing::error!(error = %e, "skipping a stored IAM entity"),
        }
    }
    tracing::debug!(entities = count, "IAM state loaded");
    Ok(state)
}
