//! Writes one CSV file in the native contract or the REES46 layout: under a temporary dot-name
//! first, renamed into place only once complete and flushed, so a watcher never sees half a
//! file. Owns the byte format of a native row (the REES46 one is [`super::rees46`]); knows
//! nothing of sessions or faults.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::DateTime;

use super::session::Event;
use super::world::World;
use super::{rees46, Layout};
use crate::schema;

/// A row already decided: either an event to print, or raw text (an injected bad row).
pub enum Row<'a> {
    Event(&'a Event),
    Raw(String),
}

/// An open output file; `finish` renames it into place.
pub struct CsvFile {
    tmp_path: PathBuf,
    final_path: PathBuf,
    out: BufWriter<File>,
    line: String,
    layout: Layout,
    /// Native files with searches have a last column, `search_query`.
    search: bool,
}

impl CsvFile {
    /// Creates `.NAME.tmp` in `dir` and writes the header of `layout`, with the
    /// `search_query` column when `search` (native only).
    pub fn create(dir: &Path, name: &str, layout: Layout, search: bool) -> io::Result<CsvFile> {
        let tmp_path = dir.join(format!(".{name}.tmp"));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp_path)?);
        match layout {
            Layout::Native => out.write_all(schema::header_line().as_bytes())?,
            Layout::Rees46 => out.write_all(rees46::HEADER.as_bytes())?,
        }
        if search {
            out.write_all(b",")?;
            out.write_all(schema::SEARCH_QUERY.as_bytes())?;
        }
        out.write_all(b"\n")?;
        Ok(CsvFile {
            tmp_path,
            final_path: dir.join(name),
            out,
            line: String::with_capacity(256),
            layout,
            search,
        })
    }

    /// Creates `.NAME.tmp` in `dir` with `header`, for rows written by [`CsvFile::write_text`].
    pub fn create_plain(dir: &Path, name: &str, header: &str) -> io::Result<CsvFile> {
        let tmp_path = dir.join(format!(".{name}.tmp"));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp_path)?);
        out.write_all(header.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(CsvFile {
            tmp_path,
            final_path: dir.join(name),
            out,
            line: String::new(),
            layout: Layout::Native,
            search: false,
        })
    }

    /// Appends rows already formatted, each ending in a newline.
    pub fn write_text(&mut self, rows: &str) -> io::Result<()> {
        self.out.write_all(rows.as_bytes())
    }

    pub fn write(&mut self, world: &World, row: Row<'_>) -> io::Result<()> {
        self.line.clear();
        match row {
            Row::Event(event) => match self.layout {
                Layout::Native => format_event(&mut self.line, world, event, self.search),
                Layout::Rees46 => rees46::format_event(&mut self.line, world, event),
            },
            Row::Raw(text) => self.line.push_str(&text),
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    /// Flushes, syncs and renames the file to its final name; returns that path.
    pub fn finish(self) -> io::Result<PathBuf> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp_path, &self.final_path)?;
        Ok(self.final_path)
    }
}

/// Formats one event as a CSV line (no line ending), with a last `search_query` field when
/// `search`. A search's product columns are empty. Generated values never need quoting.
pub fn format_event(line: &mut String, world: &World, event: &Event, search: bool) {
    use std::fmt::Write as _;
    let user = &world.users[event.user];
    let product = &world.products[event.product];
    let time = DateTime::from_timestamp_micros(event.time_micros).unwrap_or_default();
    let _ = write!(line, "{},", event.event_id);
    schema::write_event_time(line, time);
    if let Some(query) = &event.search_query {
        let _ = write!(
            line,
            ",{},{},{},,,,,,{},{},{query}",
            user.id, event.session_id, event.event_type, user.device, user.country
        );
        return;
    }
    let _ = write!(
        line,
        ",{},{},{},{},{},{}.{:02},{},",
        user.id,
        event.session_id,
        event.event_type,
        product.id,
        product.category,
        product.price_cents / 100,
        product.price_cents % 100,
        event.quantity,
    );
    if let Some(total) = event.total_cents {
        let _ = write!(line, "{}.{:02}", total / 100, total % 100);
    }
    let _ = write!(line, ",{},{}", user.device, user.country);
    if search {
        line.push(',');
    }
}
