//! The format of `rejected/<file>.rejected.csv`: each bad row as written, then its line
//! number and reason, so that a user can fix the rows and drop the file again.

use super::RejectedRow;

/// The rejected rows as CSV lines: the raw line, then `line` and `reason`. A raw line cut off
/// inside a quoted field gets its quote closed, so that it cannot swallow the lines after it.
pub fn rejects_csv_lines(rejects: &[RejectedRow], delimiter: u8) -> String {
    let d = delimiter as char;
    let mut out = String::new();
    for r in rejects {
        let close = if r.raw.matches('"').count() % 2 == 1 {
            "\""
        } else {
            ""
        };
        let reason = match &r.column {
            Some(column) => format!("{column}: {}", r.reason),
            None => r.reason.clone(),
        };
        out.push_str(&format!(
            "{}{close}{d}{}{d}\"{}\"\n",
            r.raw,
            r.line,
            reason.replace('"', "\"\"")
        ));
    }
    out
}
