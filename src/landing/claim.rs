//! File claims: of several watchers (or workers) sharing one landing, exactly one reads a file.
//! A claim is a Postgres session advisory lock keyed by the file's name, so it needs no table
//! and dies with the holder's connection. Owns nothing else.

use tokio_postgres::GenericClient;

/// Claims a landing file for this database session, so that of several watchers sharing one
/// landing directory exactly one reads it. The claim is a session advisory lock: it is
/// released by [`release_claim`], and by Postgres itself when the holder's connection dies, so
/// a crashed watcher never leaves a file stuck.
pub async fn try_claim(
    client: &impl GenericClient,
    file_name: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&claim_key(file_name)])
        .await?;
    Ok(row.get(0))
}

pub async fn release_claim(
    client: &impl GenericClient,
    file_name: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .query_one("SELECT pg_advisory_unlock($1)", &[&claim_key(file_name)])
        .await?;
    Ok(())
}

/// A 64-bit lock key from the file name (names, not contents: the claim exists before hashing).
fn claim_key(file_name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("shopstream-claim:{file_name}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}
