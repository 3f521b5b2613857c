//! `mesh watch [PRODUCT]`: the catalog's events as they happen (those the
//! caller may see), one line each on a terminal, CloudEvents JSON lines
//! (NDJSON) in a pipe. A lost connection is resumed after the last event
//! received, so nothing is skipped or printed twice.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::{Event, WatchRequest};
use tonic::Code;

use crate::cli::Cli;
use crate::style;

/// Where to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    /// After this sequence number (0: every event the registry keeps).
    After(i64),
    /// Only events written from now on.
    Now,
}

fn since(text: &str) -> Result<Since, String> {
    match text.trim() {
        "now" => Ok(Since::Now),
        number => match number.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Since::After(n)),
            _ => Err(format!(
                "`{number}` is neither `now` nor a sequence number; use `now`, `0` for every event kept, or the \
                 sequence number of the last event you saw"
            )),
        },
    }
}

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WatchFormat {
    /// One line each: sequence, time, type, product, details.
    Table,
    /// One CloudEvents JSON object per line.
    Ndjson,
}

/// Flags of `mesh watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// Only events about this product, e.g. `payment.card_spending`.
    pub product: Option<String>,
    /// Only events about this domain's products.
    #[arg(long)]
    pub domain: Option<String>,
    /// Only events of this type, or of a prefix ending in `*` (repeat for
    /// more), e.g. `mesh.access.*`.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Start after this sequence number (`0`: every event the registry
    /// keeps), or `now`.
    #[arg(long, default_value = "now", value_parser = since)]
    pub since: Since,
    /// Stop after this many events (default: watch until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
    /// How to print events [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    pub format: Option<WatchFormat>,
}

/// Waits between attempts to resume a lost stream, doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Prints events as they come until interrupted (or `--count` of them).
pub(crate) async fn run(cli: &Cli, args: &WatchArgs) -> Result<()> {
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        WatchFormat::Table
    } else {
        WatchFormat::Ndjson
    });
    let url = cli.primary_registry().to_owned();
    let channel = mesh_grpc::client::stream_channel(&url, cli.timeout, &cli.credentials)?;
    let mut client = EventServiceClient::new(channel);
    let mut request = WatchRequest {
        product: args.product.clone().unwrap_or_default(),
        domain: args.domain.clone().unwrap_or_default(),
        types: args.types.clone(),
        ..Default::default()
    };
    match args.since {
        Since::Now => request.from_now = true,
        Since::After(after) => request.after_sequence = after,
    }
    let (mut printed, mut backoff) = (0u64, Duration::from_millis(250));
    let mut out = std::io::stdout().lock();
    loop {
        let mut stream = match client.watch(request.clone()).await {
            Ok(stream) => stream.into_inner(),
            Err(status) if resumable(&status) && printed > 0 => {
                pause(&url, &status, &mut backoff).await;
                continue;
            }
            Err(status) => return Err(refused(&url, &status)),
        };
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    // From here on, a new stream resumes where this one is.
                    request.from_now = false;
                    request.after_sequence = response.resume_after;
                    backoff = Duration::from_millis(250);
                    let Some(event) = response.event else { continue };
                    print(&mut out, &event, format)?;
                    printed += 1;
                    if args.count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
                Ok(None) => break,
                Err(status) if resumable(&status) => {
                    pause(&url, &status, &mut backoff).await;
                    break;
                }
                // The token the stream began with expired: go on with the
                // current one (refused, and said so, if there is none).
                Err(status) if status.code() == Code::Unauthenticated => break,
                Err(status) => return Err(refused(&url, &status)),
            }
        }
    }
}

/// A stream lost this way is resumed.
fn resumable(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled)
}

async fn pause(url: &str, status: &tonic::Status, backoff: &mut Duration) {
    eprintln!(
        "note: the event stream from {} was lost ({}); resuming in {:?}",
        style::safe(url),
        style::safe(status.message()),
        backoff
    );
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

fn refused(url: &str, status: &tonic::Status) -> anyhow::Error {
    match status.code() {
        Code::Unavailable => crate::registry::unreachable(url, status),
        _ => anyhow!("{}", style::safe(status.message())),
    }
}

/// Prints one event.
fn print(out: &mut impl Write, event: &Event, format: WatchFormat) -> Result<()> {
    let written = match format {
        WatchFormat::Ndjson => writeln!(out, "{}", mesh_contracts::cloudevent::to_json(event)),
        WatchFormat::Table => writeln!(out, "{}", line(event)),
    };
    if let Err(error) = written.and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader went away (`mesh watch | head`): done.
            std::process::exit(0);
        }
        bail!("writing the events failed: {error}");
    }
    Ok(())
}

/// An event on one line: sequence, time, type, product, details.
pub(crate) fn line(event: &Event) -> String {
    format!(
        "{:>8}  {}  {:<36}  {:<28}  {}",
        event.sequence,
        style::time(event.time.as_ref()).unwrap_or_default(),
        style::safe(&event.r#type),
        style::safe(&event.subject),
        style::safe(&mesh_contracts::cloudevent::summary(&event.data)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_now_or_a_sequence_number() {
        assert_eq!(since("now"), Ok(Since::Now));
        assert_eq!(since("0"), Ok(Since::After(0)));
        assert_eq!(since("1234"), Ok(Since::After(1234)));
        assert!(since("-3").unwrap_err().contains("neither `now` nor a sequence number"));
        assert!(since("1h").is_err());
    }
}
