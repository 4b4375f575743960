//! Ids derived from a row's values, for sources whose rows carry none (REES46-layout events,
//! inventory updates): a UUIDv5 of a key that writes each value as `len:value;` and a missing
//! one as `-;`, so that no two rows' values run together into one key. The key's bytes are
//! fixed forever: a changed key would give a re-dropped file new ids, and it would load twice.

use uuid::Uuid;

/// The UUIDv5 in `namespace` of `values`, in order.
pub(crate) fn derived_id<'a>(
    namespace: &Uuid,
    values: impl IntoIterator<Item = Option<&'a str>>,
) -> Uuid {
    // Digits by itoa, not `write!`: the formatting machinery was 5 % of the watcher's samples
    // on REES46 files.
    let mut len_digits = itoa::Buffer::new();
    let mut key = String::with_capacity(256);
    for v in values {
        match v {
            Some(v) => {
                key.push_str(len_digits.format(v.len()));
                key.push(':');
                key.push_str(v);
                key.push(';');
            }
            None => key.push_str("-;"),
        }
    }
    uuid_v5(namespace, key.as_bytes())
}

/// `Uuid::new_v5`, with a SHA-1 that uses the CPU's SHA instructions where it has them: the
/// `uuid` crate's own SHA-1 (sha1_smol) was 7 % of the watcher's samples on REES46 files.
fn uuid_v5(namespace: &Uuid, name: &[u8]) -> Uuid {
    use sha1::{Digest, Sha1};
    let hash = Sha1::new()
        .chain_update(namespace.as_bytes())
        .chain_update(name)
        .finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn ids_are_the_uuid_crates_v5_of_the_length_prefixed_key() {
        let namespace = Uuid::from_u128(0x1234_5678_9abc_def0_0fed_cba9_8765_4321);
        let lists: [&[Option<&str>]; 4] = [
            &[],
            &[None],
            &[
                Some("1704067200000000"),
                Some("p1"),
                None,
                Some("w;1"),
                Some("-3"),
            ],
            &[
                Some(""),
                Some("é€"),
                Some(&"x".repeat(1000)),
                None,
                Some("-;"),
            ],
        ];
        for values in lists {
            let mut key = String::new();
            for v in values {
                match v {
                    Some(v) => write!(key, "{}:{v};", v.len()).unwrap(),
                    None => key.push_str("-;"),
                }
            }
            assert_eq!(
                derived_id(&namespace, values.iter().copied()),
                Uuid::new_v5(&namespace, key.as_bytes())
            );
        }
    }
}
