//! The other streams of a generated shop, drawn from the purchase events as they are written:
//! each purchase is a line of a transaction (same product, quantity and price; a session's
//! purchases in one file make one transaction), each line lowers the stock of the warehouse
//! that shipped it, and a product restocks before it runs low. Its own seeded generator, so
//! the event files of a seed are the same bytes with or without these streams.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

use super::session::{seeded_uuid, Event};
use super::world::World;
use super::writer::CsvFile;
use crate::schema;
use crate::transform::streams::{INVENTORY_COLUMNS, TRANSACTION_COLUMNS};

/// A stream `shopstream-gen --streams` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum GenStream {
    /// Clickstream events (the native contract or `--layout`).
    Events,
    /// Transactions, one row per line item (README: The transactions contract).
    Transactions,
    /// Inventory updates: sales and restocks per product and warehouse.
    Inventory,
}

const WAREHOUSES: [&str; 3] = ["wh-berlin", "wh-leeds", "wh-lyon"];
const PAYMENT_METHODS: [&str; 5] = [
    "credit_card",
    "credit_card",
    "paypal",
    "debit_card",
    "apple_pay",
];
const STREETS: [&str; 6] = [
    "Market St",
    "High St",
    "Elm Ave",
    "Oak Rd",
    "Mill Lane",
    "Park Way",
];
const CITIES: [&str; 6] = ["Springfield", "Leeds", "Lyon", "Berlin", "Porto", "Graz"];
const ADJECTIVES: [&str; 8] = [
    "Classic", "Compact", "Deluxe", "Eco", "Smart", "Pro", "Mini", "Ultra",
];
/// Free shipping from this order value (cents); below it shipping costs `SHIPPING_CENTS`.
const FREE_SHIPPING_CENTS: i64 = 5_000;
const SHIPPING_CENTS: i64 = 499;
/// Tax on the items, in basis points.
const TAX_BP: i64 = 800;
/// A restock brings this many units (the low end included, the high end not).
const RESTOCK: std::ops::Range<i32> = 10..60;
/// A seed of its own, so that the event generator's draws do not move.
const STREAM_SEED_SALT: u64 = 0x5eed_57ea_3c0d_e001;

/// The transaction being gathered: one session's purchases in this file.
struct OpenTransaction {
    session: Uuid,
    lines: Vec<Event>,
}

/// Rows of the other streams for the current file, and the stock they leave.
pub struct Streams {
    rng: StdRng,
    transactions: bool,
    inventory: bool,
    open: Option<OpenTransaction>,
    transaction_rows: String,
    inventory_rows: String,
    stock: HashMap<(usize, usize), i32>,
    /// Inventory times only move forward: a late purchase event is still sold now.
    clock: i64,
    pub transaction_lines: u64,
    pub inventory_updates: u64,
}

impl Streams {
    pub fn new(seed: u64, transactions: bool, inventory: bool) -> Streams {
        Streams {
            rng: StdRng::seed_from_u64(seed ^ STREAM_SEED_SALT),
            transactions,
            inventory,
            open: None,
            transaction_rows: String::new(),
            inventory_rows: String::new(),
            stock: HashMap::new(),
            clock: i64::MIN,
            transaction_lines: 0,
            inventory_updates: 0,
        }
    }

    /// A purchase event that was written (valid, not a repeat).
    pub fn purchase(&mut self, world: &World, event: &Event) {
        if self
            .open
            .as_ref()
            .is_some_and(|t| t.session != event.session_id)
        {
            self.close(world);
        }
        self.open
            .get_or_insert_with(|| OpenTransaction {
                session: event.session_id,
                lines: Vec::new(),
            })
            .lines
            .push(event.clone());
    }

    /// Writes the file's transactions and inventory updates (files without rows are not
    /// written); returns their paths.
    pub fn finish_file(
        &mut self,
        world: &World,
        dir: &Path,
        stem: &str,
    ) -> io::Result<Vec<PathBuf>> {
        self.close(world);
        let mut written = Vec::new();
        let outputs = [
            (
                self.transactions,
                "transactions",
                TRANSACTION_COLUMNS.join(","),
                &mut self.transaction_rows,
            ),
            (
                self.inventory,
                "inventory",
                INVENTORY_COLUMNS.join(","),
                &mut self.inventory_rows,
            ),
        ];
        for (wanted, stream, header, rows) in outputs {
            if wanted && !rows.is_empty() {
                let mut file =
                    CsvFile::create_plain(dir, &format!("{stream}-{stem}.csv"), &header)?;
                file.write_text(rows)?;
                written.push(file.finish()?);
            }
            rows.clear();
        }
        Ok(written)
    }

    /// Ends the open transaction: its line rows, and the stock movements of its lines.
    fn close(&mut self, world: &World) {
        let Some(t) = self.open.take() else {
            return;
        };
        let id = seeded_uuid(&mut self.rng);
        let warehouse = self.rng.random_range(0..WAREHOUSES.len());
        let method = PAYMENT_METHODS[self.rng.random_range(0..PAYMENT_METHODS.len())];
        let address = format!(
            "\"{} {}, {}\"",
            self.rng.random_range(1..200),
            STREETS[self.rng.random_range(0..STREETS.len())],
            CITIES[self.rng.random_range(0..CITIES.len())]
        );
        let items: i64 = t.lines.iter().map(|e| e.total_cents.unwrap_or(0)).sum();
        let tax = (items * TAX_BP + 5_000) / 10_000;
        let shipping = if items >= FREE_SHIPPING_CENTS {
            0
        } else {
            SHIPPING_CENTS
        };
        let total = items + tax + shipping;
        let first = &t.lines[0];
        let user = &world.users[first.user].id;
        for (n, e) in t.lines.iter().enumerate() {
            let product = &world.products[e.product];
            if self.transactions {
                let rows = &mut self.transaction_rows;
                let _ = write!(rows, "{id},{},", n + 1);
                schema::write_event_time(rows, time(first.time_micros));
                let _ = writeln!(
                    rows,
                    ",{user},{method},{},{},{},{},{},{},{},{},{},{address}",
                    product.id,
                    product_name(e.product, product.category),
                    cents(product.price_cents),
                    e.quantity,
                    cents(e.total_cents.unwrap_or(0)),
                    cents(tax),
                    cents(shipping),
                    cents(total),
                    WAREHOUSES[warehouse],
                );
                self.transaction_lines += 1;
            }
            self.sell(world, e, warehouse);
        }
    }

    /// Lowers the stock of `warehouse` by the line's quantity, restocking first when it has
    /// too few: stocks run low between restocks, as a low-stock panel expects.
    fn sell(&mut self, world: &World, e: &Event, warehouse: usize) {
        let quantity = e.quantity as i32;
        let key = (e.product, warehouse);
        let stock = self.stock.get(&key).copied().unwrap_or(0);
        self.clock = self.clock.max(e.time_micros);
        if stock < quantity {
            let arriving = self.rng.random_range(RESTOCK);
            self.update(world, key, arriving, stock + arriving);
        }
        let stock = self.stock.get(&key).copied().unwrap_or(0);
        self.update(world, key, -quantity, stock - quantity);
    }

    fn update(
        &mut self,
        world: &World,
        (product, warehouse): (usize, usize),
        change: i32,
        now: i32,
    ) {
        self.stock.insert((product, warehouse), now);
        self.clock += 1_000;
        if !self.inventory {
            return;
        }
        let p = &world.products[product];
        let rows = &mut self.inventory_rows;
        let _ = write!(rows, "{},", seeded_uuid(&mut self.rng));
        schema::write_event_time(rows, time(self.clock));
        let _ = writeln!(
            rows,
            ",{},{},{},{change},{now}",
            p.id,
            product_name(product, p.category),
            WAREHOUSES[warehouse]
        );
        self.inventory_updates += 1;
    }
}

fn time(micros: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// A stable display name for catalogue entry `index`.
fn product_name(index: usize, category: &str) -> String {
    format!(
        "{} {category} {}",
        ADJECTIVES[index % ADJECTIVES.len()],
        index + 1
    )
}
