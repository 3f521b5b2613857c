//! How the CLI prints tables: comfy-table, colour only on a terminal and
//! never when `NO_COLOR` is set.

use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};
use mesh_contracts::catalog::{Product, ServingStatus};

/// Whether output may use colour.
pub(crate) fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A table with `header`, sized to the terminal.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if !std::io::stdout().is_terminal() {
        table.force_no_tty();
    }
    table.set_header(header.iter().map(|h| Cell::new(h).add_attribute(comfy_table::Attribute::Bold)));
    table
}

/// A cell coloured green, yellow or red when colour is allowed.
pub(crate) fn coloured(text: impl Into<String>, good: Option<bool>) -> Cell {
    let cell = Cell::new(text.into());
    match (colour(), good) {
        (true, Some(true)) => cell.fg(Color::Green),
        (true, Some(false)) => cell.fg(Color::Red),
        (true, None) => cell.fg(Color::Yellow),
        (false, _) => cell,
    }
}

/// A serving status in words: `serving`, `stale`, `offline`, `not registered`.
pub(crate) fn status_word(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Serving => "serving",
        ServingStatus::Stale => "stale",
        ServingStatus::Offline => "offline",
        ServingStatus::NotRegistered => "not registered",
        ServingStatus::Unspecified => "unknown",
    }
}

/// A product's status cell: deprecated wins over serving.
pub(crate) fn product_status(product: &Product) -> Cell {
    if product.deprecation.is_some() {
        return coloured(format!("deprecated ({})", status_word(product.status())), None);
    }
    let status = product.status();
    coloured(status_word(status), Some(status == ServingStatus::Serving))
}
