//! How the CLI prints tables: comfy-table, colour only on a terminal and
//! never when `NO_COLOR` is set. Text from the registry, from rows and from
//! servers is escaped before it reaches the terminal, so that none of it can
//! move the cursor, change colours, set the title or hide text (ANSI/OSC
//! sequences, other control characters, bidirectional overrides).

use std::borrow::Cow;
use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};
use mesh_contracts::catalog::{Product, ServingStatus};

/// Whether output may use colour.
pub(crate) fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether `c` would act on a terminal rather than show: control
/// characters (C0, DEL, C1) and the bidirectional formatting characters.
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character that would act on a terminal written as a
/// visible escape such as `\u{1b}`; line breaks are kept when `keep_lines`.
fn escaped(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let escape = |c: char| acts_on_terminal(c) && !(keep_lines && c == '\n');
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escape(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of untrusted text, safe to print.
pub(crate) fn safe(text: &str) -> Cow<'_, str> {
    escaped(text, false)
}

/// Untrusted text that may span lines, safe to print.
pub(crate) fn safe_lines(text: &str) -> Cow<'_, str> {
    escaped(text, true)
}

/// A timestamp as RFC 3339 to the second, e.g. `2026-11-26T09:00:00Z`.
/// `None` outside years 1970 to 9999 (a service's bad clock), which the
/// format cannot show.
pub(crate) fn time(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    /// 9999-12-31T23:59:59Z.
    const LAST: i64 = 253_402_300_799;
    let timestamp = timestamp.filter(|t| (0..=LAST).contains(&t.seconds))?;
    let time = std::time::SystemTime::try_from(*timestamp).ok()?;
    Some(humantime::format_rfc3339_seconds(time).to_string())
}

/// A table cell of untrusted text (line breaks kept).
pub(crate) fn cell(text: impl AsRef<str>) -> Cell {
    Cell::new(safe_lines(text.as_ref()))
}

/// A table with `header`, sized to the terminal.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if !std::io::stdout().is_terminal() {
        table.force_no_tty();
    }
    table.set_header(header.iter().map(|h| Cell::new(safe(h)).add_attribute(comfy_table::Attribute::Bold)));
    table
}

/// A cell coloured green, yellow or red when colour is allowed.
pub(crate) fn coloured(text: impl Into<String>, good: Option<bool>) -> Cell {
    let cell = cell(text.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_out_of_range_shows_as_none() {
        let at = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        assert_eq!(time(Some(&at(0))).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(time(Some(&at(-1))), None);
        assert_eq!(time(Some(&at(i64::MAX))), None);
        assert_eq!(time(Some(&at(253_402_300_800))), None);
    }

    #[test]
    fn what_would_act_on_a_terminal_is_shown_escaped() {
        assert!(matches!(safe("서울 plain text"), Cow::Borrowed(_)));
        assert_eq!(safe("\u{1b}[2J\u{1b}]0;owned\u{7}"), "\\u{1b}[2J\\u{1b}]0;owned\\u{7}");
        assert_eq!(safe("a\u{9b}31mb\u{7f}"), "a\\u{9b}31mb\\u{7f}");
        assert_eq!(safe("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(safe("one\ntwo\r"), "one\\u{a}two\\u{d}");
        assert_eq!(safe_lines("one\ntwo\r"), "one\ntwo\\u{d}");
    }
}
