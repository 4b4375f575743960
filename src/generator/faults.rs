//! Fault injection for tests and demos: bad rows of every kind the contract rejects.
//! Works on a formatted line; never touches the funnel or the files.

use rand::RngExt;

/// One way a row can break the contract, with the field it breaks and the value put there.
const BAD_VALUES: [(usize, &str); 8] = [
    (0, "not-a-uuid"),
    (1, "yesterday at noon"),
    (2, ""),
    (4, "wishlist"),
    (7, "-5.00"),
    (8, "0"),
    (8, "two"),
    (11, "Germany"),
];

/// Replaces one field of a formatted native-contract line with a value the contract rejects.
pub fn corrupt<R: RngExt>(rng: &mut R, line: &str) -> String {
    let mut fields: Vec<&str> = line.split(',').collect();
    // A purchase without its total is its own kind of bad row.
    if fields.get(4) == Some(&"purchase") && rng.random_bool(0.3) {
        fields[9] = "";
        return fields.join(",");
    }
    let (index, value) = BAD_VALUES[rng.random_range(0..BAD_VALUES.len())];
    if let Some(field) = fields.get_mut(index) {
        *field = value;
    }
    fields.join(",")
}
